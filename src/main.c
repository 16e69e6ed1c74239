/* main: arguments, setup and teardown order, signals, sd_notify */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "crypto.h"
#include "evloop.h"
#include "jwks.h"
#include "log.h"
#include "metrics.h"
#include "proxy.h"
#include "proxy_cache.h"
#include "server.h"
#include "session.h"
#include "upstream.h"

#define DEFAULT_CONF	SYSCONFDIR "/supagate/supagate.conf"
#define DRAIN_MS	30000
#define DRAIN_POLL_MS	50

static const char	*conf_file;
static int		 draining;
static int64_t		 drain_deadline_ms;
static struct evloop_timer drain_timer;

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: supagate [-dnv] [-f file]\n"
	    "       supagate login [-d] [-f file]\n"
	    "       supagate token name\n"
	    "       supagate --version | --help\n"
	    "  -d       debug logging\n"
	    "  -f file  configuration file (default %s;\n"
	    "           without it, SUPABASE_URL and SUPABASE_KEY)\n"
	    "  -n       check the configuration and exit\n"
	    "  -v       with -n, print the effective configuration\n",
	    DEFAULT_CONF);
}

/*
 * supagate token NAME: a new client token on the first line, and the
 * line for client-tokens-file (NAME, BLAKE2b-256 of the token in hex)
 * on the second.  Only the digest is kept by supagate.
 */
static int
token_main(const char *name)
{
	unsigned char	 raw[32], d[32];
	char		 tok[4 + 64], hex[65];

	if (!conf_token_name_ok(name)) {
		fprintf(stderr, "supagate token: a name is 1 to %d letters, "
		    "digits, '.', '_' or '-'\n", CONF_TOKEN_NAME_MAX);
		return 2;
	}
	crypto_random(raw, sizeof(raw));
	memcpy(tok, "sgt_", 4);
	if (crypto_b64url_encode(raw, sizeof(raw), tok + 4,
	    sizeof(tok) - 4) < 0) {
		fprintf(stderr, "supagate token: encoding failed\n");
		return 1;
	}
	crypto_digest(tok, strlen(tok), d);
	crypto_hex(d, sizeof(d), hex);
	printf("%s\n%s %s\n", tok, name, hex);
	crypto_wipe(raw, sizeof(raw));
	crypto_wipe(tok, sizeof(tok));
	return fflush(stdout) == 0 ? 0 : 1;
}

/* speak the sd_notify protocol directly on $NOTIFY_SOCKET */
static void
notify(const char *state)
{
	const char		*path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un	 sun;
	socklen_t		 len;
	int			 fd;

	if (path == NULL || (path[0] != '/' && path[0] != '@') ||
	    strlen(path) >= sizeof(sun.sun_path))
		return;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path));
	if (path[0] == '@')
		sun.sun_path[0] = '\0';
	len = offsetof(struct sockaddr_un, sun_path) + strlen(path);
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL,
	    (struct sockaddr *)&sun, len) == -1)
		log_debug("%s: %s", __func__, strerror(errno));
	close(fd);
}

static void
drain_check_cb(void *arg)
{
	(void)arg;
	if (proxy_inflight() == 0 || evloop_now_ms() >= drain_deadline_ms) {
		if (proxy_inflight() != 0)
			log_warnx("stopping with %zu requests still in flight",
			    proxy_inflight());
		evloop_stop();
		return;
	}
	evloop_timer_arm(&drain_timer, DRAIN_POLL_MS, drain_check_cb, NULL);
}

static void
reload(void)
{
	struct conf	*c;

	notify("RELOADING=1");
	if ((c = conf_load(conf_file)) == NULL) {
		metrics.reload_failures++;
		log_warnx("reload failed; keeping the running configuration");
	} else {
		proxy_set_conf(c);
		(void)jwks_setup(c);
		evloop_busy_poll((int64_t)c->busy_poll_us);
		conf_unref(c);
		metrics.reloads++;
		log_info("configuration reloaded (listen addresses and limits "
		    "of the listening sockets change only on restart)");
	}
	notify("READY=1");
}

static void
signal_cb(int signo, void *arg)
{
	(void)arg;
	if (signo == SIGHUP) {
		reload();
		return;
	}
	if (draining) {
		log_info("second signal: stopping now");
		evloop_stop();
		return;
	}
	draining = 1;
	notify("STOPPING=1");
	log_info("signal %d: draining %zu requests", signo, proxy_inflight());
	server_quiesce();
	drain_deadline_ms = evloop_now_ms() + DRAIN_MS;
	drain_check_cb(NULL);
}

int
main(int argc, char *argv[])
{
	struct conf	*c;
	int		 ch, debug = 0, check = 0, verbose = 0, login = 0, i,
			 rc;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--version") == 0) {
			printf("%s %s\n", PACKAGE_NAME, PACKAGE_VERSION);
			return 0;
		}
		if (strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		}
	}
	if (argc > 1 && strcmp(argv[1], "token") == 0) {
		if (argc != 3) {
			usage(stderr);
			return 2;
		}
		if (crypto_setup() != 0)
			fatalx("libsodium initialisation failed");
		return token_main(argv[2]);
	}
	if (argc > 1 && strcmp(argv[1], "login") == 0) {
		login = 1;
		argv++;
		argc--;
	}
	while ((ch = getopt(argc, argv, "df:nv")) != -1) {
		switch (ch) {
		case 'd':
			debug++;
			break;
		case 'f':
			conf_file = optarg;
			break;
		case 'n':
			check = 1;
			break;
		case 'v':
			verbose++;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || (login && (check || verbose))) {
		usage(stderr);
		return 2;
	}
	log_init(debug);
	if (crypto_setup() != 0)
		fatalx("libsodium initialisation failed");
	if (conf_file == NULL && access(DEFAULT_CONF, R_OK) == 0 &&
	    getenv("SUPABASE_URL") == NULL)
		conf_file = DEFAULT_CONF;
	if ((c = conf_load(conf_file)) == NULL)
		return 1;
	if (login) {
		rc = session_login_main(c);
		conf_unref(c);
		return rc;
	}
	if (check) {
		if (verbose)
			conf_dump(c, stdout);
		else
			fprintf(stderr, "configuration OK\n");
		conf_unref(c);
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	/*
	 * Big buffers (256 KiB body rings) are mapped and unmapped, never
	 * kept in the heap: a burst of large transfers must not leave the
	 * daemon's memory at its high-water mark.
	 */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	if (evloop_setup() != 0 || evloop_signals(signal_cb, NULL) != 0 ||
	    upstream_setup() != 0)
		fatalx("setup failed");
	if (session_setup(c) != 0)
		fatalx("session setup failed");
	(void)jwks_setup(c);
	proxy_set_conf(c);
	if (proxy_setup() != 0)
		fatalx("setup failed");
	/* without a usable store supagate still serves, uncached */
	(void)proxy_cache_setup(c);
	if (server_setup(c) != 0)
		fatalx("cannot listen");
	evloop_busy_poll((int64_t)c->busy_poll_us);
	conf_unref(c);
	log_info("%s %s ready", PACKAGE_NAME, PACKAGE_VERSION);
	notify("READY=1");

	evloop_run();

	proxy_abort_all();
	server_teardown();
	proxy_cache_teardown();
	proxy_teardown();
	jwks_teardown();
	session_teardown();
	upstream_teardown();
	evloop_teardown();
	log_info("stopped");
	return 0;
}
