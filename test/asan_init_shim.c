/*
 * asan_init_shim.c — preloaded after libasan by test/sanitize.sh, so that
 * AddressSanitizer initializes before it is first needed under a glibc lock.
 *
 * Preloaded into an uninstrumented program, ASan initializes lazily at the
 * first malloc.  In Debian's postgres that is inside libgpg-error's
 * constructor, which calls bindtextdomain(); ASan's init then runs dlsym(),
 * whose error path takes and releases gettext's _nl_state_lock while
 * bindtextdomain holds it for writing, and the next bindtextdomain (the
 * postmaster's own) waits forever.  This bindtextdomain initializes ASan
 * (__asan_init, from the preloaded libasan) outside that lock, then calls
 * the real one.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>

typedef char *(*BindTextDomainFn) (const char *, const char *);

/* libasan's entry point (weak: resolved from the preloaded libasan). */
extern void __asan_init(void) __attribute__((weak));

/* Initialize ASan before the real bindtextdomain takes its lock. */
char *
bindtextdomain(const char *domainname, const char *dirname)
{
	static BindTextDomainFn real = NULL;

	if (__asan_init)
		__asan_init();
	if (real == NULL)
		real = (BindTextDomainFn) dlsym(RTLD_NEXT, "bindtextdomain");
	return real ? real(domainname, dirname) : NULL;
}
