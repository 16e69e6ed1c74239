/*
 * ck_run.h: the one way a test program runs its Check suite.  Each
 * program's main() does its own set-up, then returns ck_run(suite()).
 */
#ifndef CK_RUN_H
#define CK_RUN_H

#include <check.h>
#include <stdlib.h>

/* run s (CK_NORMAL) and free it; EXIT_SUCCESS if every test passed */
static inline int
ck_run(Suite *s)
{
	SRunner	*sr = srunner_create(s);
	int	 nfailed;

	srunner_run_all(sr, CK_NORMAL);
	nfailed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nfailed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
