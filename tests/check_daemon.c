/*
 * check_daemon: the process itself: the command line, -n, running from
 * the environment alone, SIGHUP reload (and keeping the old config when
 * the new one is broken), SIGTERM draining, and the sd_notify messages.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "harness.h"

static struct h_proc	 up;		/* fakeup for the whole binary */
static const char	*gate_bin;

/* run supagate with argv to completion; its output into out */
static int
run(const char *const *args, char *out, size_t outlen)
{
	char	 path[] = "/tmp/sg-daemon-out.XXXXXX";
	char	*argv[16], *s;
	int	 fd, st, i = 0;
	pid_t	 pid;

	ck_assert_int_ge(fd = mkstemp(path), 0);
	argv[i++] = (char *)gate_bin;
	for (; *args != NULL && i < 15; args++)
		argv[i++] = (char *)*args;
	argv[i] = NULL;
	ck_assert_int_ge(pid = fork(), 0);
	if (pid == 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		execv(gate_bin, argv);
		_exit(127);
	}
	close(fd);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	s = h_slurp(path, NULL);
	unlink(path);
	snprintf(out, outlen, "%s", s != NULL ? s : "");
	free(s);
	ck_assert(WIFEXITED(st));
	return WEXITSTATUS(st);
}

/* write text to path (mode 0600) */
static void
put(const char *path, const char *text)
{
	FILE	*fp = fopen(path, "w");

	ck_assert_ptr_nonnull(fp);
	fputs(text, fp);
	ck_assert_int_eq(fclose(fp), 0);
	chmod(path, 0600);
}

/* wait (bounded) until the log holds needle n times */
static int
log_has(const struct h_proc *p, const char *needle, int n)
{
	char		*s, *at;
	int		 i, found = 0;

	for (i = 0; i < 200 && found < n; i++) {
		found = 0;
		if ((s = h_slurp(p->log, NULL)) != NULL) {
			for (at = s; (at = strstr(at, needle)) != NULL; at++)
				found++;
			free(s);
		}
		if (found < n)
			h_sleep_ms(25);
	}
	return found >= n;
}

START_TEST(version_and_help)
{
	const char	*v[] = { "--version", NULL };
	const char	*h[] = { "--help", NULL };
	const char	*bad[] = { "-x", NULL };
	const char	*extra[] = { "-f", "a.conf", "junk", NULL };
	char		 out[4096];

	ck_assert_int_eq(run(v, out, sizeof(out)), 0);
	ck_assert_str_eq(out, PACKAGE_NAME " " PACKAGE_VERSION "\n");
	ck_assert_int_eq(run(h, out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "usage: supagate"));
	ck_assert_int_eq(run(bad, out, sizeof(out)), 2);
	ck_assert_ptr_nonnull(strstr(out, "usage: supagate"));
	ck_assert_int_eq(run(extra, out, sizeof(out)), 2);
}
END_TEST

START_TEST(check_mode)
{
	char		 dir[] = "/tmp/sg-daemon.XXXXXX", conf[256], key[256];
	char		 out[16384];
	const char	*args[] = { "-n", "-f", conf, NULL };
	const char	*argsv[] = { "-n", "-v", "-f", conf, NULL };

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(conf, sizeof(conf), "%s/s.conf", dir);
	snprintf(key, sizeof(key), "%s/anon.key", dir);
	put(key, h_keys.anon);
	put(conf, h_fmt("listen 127.0.0.1:0\nupstream http://127.0.0.1:9\n"
	    "anon-key-file %s\n", key));
	ck_assert_int_eq(run(args, out, sizeof(out)), 0);
	/* -v prints the effective configuration, never the key */
	ck_assert_int_eq(run(argsv, out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "upstream http://127.0.0.1:9"));
	ck_assert_ptr_null(strstr(out, h_keys.anon));
	/* every error, as file:line: message, exit 1 */
	put(conf, h_fmt("listen 127.0.0.1:0\nupstream http://127.0.0.1:9\n"
	    "anon-key-file %s\nbogus-keyword 1\nmax-body-size lots\n", key));
	ck_assert_int_eq(run(args, out, sizeof(out)), 1);
	ck_assert_msg(strstr(out, h_fmt("%s:4:", conf)) != NULL, "%s", out);
	ck_assert_msg(strstr(out, h_fmt("%s:5:", conf)) != NULL, "%s", out);
	/* a key file others can read is refused */
	chmod(key, 0644);
	put(conf, h_fmt("listen 127.0.0.1:0\nupstream http://127.0.0.1:9\n"
	    "anon-key-file %s\n", key));
	ck_assert_int_eq(run(args, out, sizeof(out)), 1);
	ck_assert_ptr_null(strstr(out, h_keys.anon));
	unlink(key);
	unlink(conf);
	rmdir(dir);
}
END_TEST

/* SUPABASE_URL and SUPABASE_KEY supply upstream and key; mode from key */
START_TEST(environment_only)
{
	struct h_proc	 gate;
	struct h_resp	 r;
	char		 v[1024];

	h_child_env("SUPABASE_URL", h_fmt("http://127.0.0.1:%d", up.port));
	h_child_env("SUPABASE_KEY", h_keys.anon);
	ck_assert_int_eq(h_gate_start(&gate, "listen 127.0.0.1:0\n", up.port,
	    NULL), 0);
	ck_assert_int_eq(h_get(&r, gate.port, "/rest/v1/echo"), 0);
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(h_echo_hdr(r.body, "apikey", 0, v, sizeof(v)), 0);
	ck_assert_str_eq(v, h_keys.anon);
	h_resp_free(&r);
	ck_assert_int_eq(h_get(&r, gate.port, "/_supagate/health"), 0);
	ck_assert_ptr_nonnull(strstr(r.body, "\"auth_mode\":\"anon\""));
	h_resp_free(&r);
	ck_assert(log_has(&gate, "supagate: 1 GET /rest/v1/echo 200", 1));
	ck_assert_int_eq(h_stop(&gate, 5000, NULL), 0);

	/* a service key alone: service mode, read-only REST exposed */
	h_child_env("SUPABASE_KEY", h_keys.service);
	ck_assert_int_eq(h_gate_start(&gate, "listen 127.0.0.1:0\n", up.port,
	    NULL), 0);
	ck_assert_int_eq(h_get(&r, gate.port, "/_supagate/health"), 0);
	ck_assert_ptr_nonnull(strstr(r.body, "\"auth_mode\":\"service\""));
	h_resp_free(&r);
	ck_assert_int_eq(h_get(&r, gate.port, "/rest/v1/echo"), 0);
	ck_assert_int_eq(r.status, 200);
	h_resp_free(&r);
	ck_assert_int_eq(h_req(&r, gate.port, "POST", "/rest/v1/echo", NULL),
	    0);
	ck_assert(h_is_error(&r, 403, "forbidden") == 0);
	h_resp_free(&r);
	ck_assert_int_eq(h_get(&r, gate.port, "/auth/v1/echo"), 0);
	ck_assert(h_is_error(&r, 403, "forbidden") == 0);
	h_resp_free(&r);
	ck_assert_int_eq(h_stop(&gate, 5000, NULL), 0);
	h_child_env("SUPABASE_URL", NULL);
	h_child_env("SUPABASE_KEY", NULL);
}
END_TEST

static const char *
user_auth_upstream(int port)
{
	static char	v[2048];
	struct h_resp	r;
	struct h_opts	o;
	const char	*hdrs[] = { "apikey: placeholder",
			    h_fmt("Authorization: Bearer %s", h_keys.user),
			    NULL };

	memset(&o, 0, sizeof(o));
	o.hdrs = hdrs;
	ck_assert_int_eq(h_req(&r, port, "GET", "/rest/v1/echo", &o), 0);
	ck_assert_int_eq(r.status, 200);
	v[0] = '\0';
	h_echo_hdr(r.body, "Authorization", 0, v, sizeof(v));
	h_resp_free(&r);
	return v;
}

/* SIGHUP applies a good config and keeps the old one after a bad one */
START_TEST(reload)
{
	struct h_proc	 gate;
	char		 conf[H_PATH_MAX + 32];
	double		 n = -1;
	const char	*base = "listen 127.0.0.1:0\nupstream @UP@\n"
			    "anon-key-file @DIR@/anon.key\n";

	ck_assert_int_eq(h_gate_start(&gate, base, up.port, NULL), 0);
	snprintf(conf, sizeof(conf), "%s/supagate.conf", gate.dir);
	ck_assert_str_eq(user_auth_upstream(gate.port),
	    h_fmt("Bearer %s", h_keys.user));

	put(conf, h_fmt("listen 127.0.0.1:0\nupstream http://127.0.0.1:%d\n"
	    "anon-key-file %s/anon.key\nclient-auth replace\n", up.port,
	    gate.dir));
	kill(gate.pid, SIGHUP);
	ck_assert(log_has(&gate, "configuration reloaded", 1));
	ck_assert_str_eq(user_auth_upstream(gate.port),
	    h_fmt("Bearer %s", h_keys.anon));

	put(conf, "listen 127.0.0.1:0\nno-such-keyword yes\n");
	kill(gate.pid, SIGHUP);
	ck_assert(log_has(&gate, "reload failed", 1));
	ck_assert(log_has(&gate, "supagate.conf:2:", 1));
	ck_assert(h_alive(&gate));
	/* still the second configuration */
	ck_assert_str_eq(user_auth_upstream(gate.port),
	    h_fmt("Bearer %s", h_keys.anon));
	ck_assert_int_eq(h_metric(gate.port,
	    "supagate_config_reload_failures_total", NULL, &n), 0);
	ck_assert(n == 1);
	ck_assert_int_eq(h_metric(gate.port, "supagate_config_reloads_total",
	    NULL, &n), 0);
	ck_assert(n == 1);
	ck_assert_int_eq(h_stop(&gate, 5000, NULL), 0);
}
END_TEST

/* SIGTERM: no new connections, the request in flight completes, exit 0 */
START_TEST(drain_on_sigterm)
{
	static const char	 req[] = "GET /rest/v1/delay?ms=1500 HTTP/1.1\r\n"
				    "Host: localhost\r\n\r\n";
	struct h_proc		 gate;
	static struct h_raw_resp rr;
	int			 fd, i, st = -1;

	ck_assert_int_eq(h_gate_start(&gate, "listen 127.0.0.1:0\n"
	    "upstream @UP@\nanon-key-file @DIR@/anon.key\n", up.port, NULL), 0);
	ck_assert_int_ge(fd = h_connect(gate.port), 0);
	ck_assert_int_eq(h_send_all(fd, req, sizeof(req) - 1, 2000), 0);
	h_sleep_ms(200);	/* let it reach upstream; not asserted */
	kill(gate.pid, SIGTERM);
	ck_assert(log_has(&gate, "draining 1 requests", 1));
	/* new connections are refused while draining */
	ck_assert_int_lt(h_connect(gate.port), 0);
	ck_assert_int_eq(h_raw_read(fd, 0, 10000, &rr), 200);
	ck_assert_int_eq(rr.status, 200);
	close(fd);
	for (i = 0; i < 400 && h_alive(&gate); i++)
		h_sleep_ms(25);
	ck_assert(!h_alive(&gate));
	st = h_stop(&gate, 1000, NULL);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}
END_TEST

/* READY=1 once listening; RELOADING=1 + READY=1 on SIGHUP; STOPPING=1 */
START_TEST(sd_notify)
{
	struct sockaddr_un	 sun;
	struct h_proc		 gate;
	struct pollfd		 pfd;
	char			 path[] = "/tmp/sg-notify.XXXXXX", sock[64];
	char			 msg[256], seen[1024] = "";
	ssize_t			 n;
	int			 fd, i;

	ck_assert_ptr_nonnull(mkdtemp(path));
	snprintf(sock, sizeof(sock), "%s/notify", path);
	ck_assert_int_ge(fd = socket(AF_UNIX, SOCK_DGRAM, 0), 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	h_child_env("NOTIFY_SOCKET", sock);
	ck_assert_int_eq(h_gate_start(&gate, "listen 127.0.0.1:0\n"
	    "upstream @UP@\nanon-key-file @DIR@/anon.key\n", up.port, NULL), 0);
	h_child_env("NOTIFY_SOCKET", NULL);
	kill(gate.pid, SIGHUP);
	ck_assert(log_has(&gate, "configuration reloaded", 1));
	kill(gate.pid, SIGTERM);
	pfd.fd = fd;
	pfd.events = POLLIN;
	for (i = 0; i < 8 && strstr(seen, "STOPPING=1") == NULL; i++) {
		if (poll(&pfd, 1, 5000) != 1)
			break;
		if ((n = recv(fd, msg, sizeof(msg) - 1, 0)) <= 0)
			break;
		msg[n] = '\0';
		strncat(seen, msg, sizeof(seen) - strlen(seen) - 2);
		strcat(seen, ";");
	}
	ck_assert_str_eq(seen, "READY=1;RELOADING=1;READY=1;STOPPING=1;");
	ck_assert_int_eq(h_stop(&gate, 5000, NULL), 0);
	close(fd);
	unlink(sock);
	rmdir(path);
}
END_TEST

static Suite *
suite(void)
{
	Suite	*s = suite_create("daemon");
	TCase	*t = tcase_create("daemon");

	tcase_set_timeout(t, 60);
	tcase_add_test(t, version_and_help);
	tcase_add_test(t, check_mode);
	tcase_add_test(t, environment_only);
	tcase_add_test(t, reload);
	tcase_add_test(t, drain_on_sigterm);
	tcase_add_test(t, sd_notify);
	suite_add_tcase(s, t);
	return s;
}

int
main(void)
{
	gate_bin = getenv("SUPAGATE_BIN");
	if (gate_bin == NULL) {
		fprintf(stderr, "check_daemon: SUPAGATE_BIN is not set\n");
		return EXIT_FAILURE;
	}
	return h_fakeup_main(&up, suite);
}
