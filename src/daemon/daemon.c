/*
 * daemon.c - start-up, signals, reload and shutdown of the daemon
 *
 * Exports daemon_main().  The process-wide state it fills is in runtime.c.
 *
 * Start-up order: configuration, logging, TLS contexts, signature
 * database, listening sockets, event log, then (with `user` set) drop root,
 * then the backend probe and the loop.  Everything that can fail at start
 * fails here with a clear message and exit status 1; nothing after start-up
 * exits because of a peer.
 *
 * Files and the dropped user: started as root with `user` set, the daemon
 * gives the event log (and the directory it creates for it) to that user,
 * so SIGUSR1 can create the next file after rotation; it warns when an
 * existing directory would not let it.  The configuration file must be
 * readable by that user for SIGHUP (root-owned 0644, holding no secret);
 * the admin token belongs in admin_token_file, which may be root-owned
 * 0600: it is read as root at start-up, and on SIGHUP again only if the
 * dropped user can read it, else the running token stays, with a warning.
 * After the drop the process sets no_new_privs, so nothing it could exec
 * gains privileges (the seccomp filter needs it too).
 *
 * SIGHUP loads the file again and keeps the values of non-reloadable
 * parameters; a broken file is logged and the running configuration stays.
 * SIGTERM stops accepting, gives sessions grace_time to finish, then ends
 * the rest with 421, writes the event log out and exits.  SIGUSR1 reopens
 * the event log.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "admin/admin.h"
#include "admin/feedback.h"
#include "daemon/daemon.h"
#include "daemon/runtime.h"
#include "daemon/listener.h"
#include "daemon/shaper.h"
#include "dns/fcrdns.h"
#include "dns/psl.h"
#include "dnsbl/dnsbl.h"
#include "fp/fp.h"
#include "log/eventlog.h"
#include "rep/rep.h"
#include "smtp/backend.h"
#include "smtp/session.h"
#include "smtp/spool.h"
#include "util/log.h"

static struct ms the_ms;
static struct event *grace_timer;
static int run_as;		/* root with `user` set: files go to run_uid */
static uid_t run_uid;
static gid_t run_gid;

/* tls_server_ctx - STARTTLS context from the configured files */
static SSL_CTX *
tls_server_ctx(const struct conf *cf, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (ctx == NULL) {
		snprintf(err, errlen, "cannot create a TLS context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	if (SSL_CTX_use_certificate_chain_file(ctx, cf->tls_cert_file) != 1) {
		snprintf(err, errlen, "tls_cert_file %s: %s", cf->tls_cert_file,
		    ERR_reason_error_string(ERR_get_error()));
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, cf->tls_key_file,
	    SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "tls_key_file %s: %s", cf->tls_key_file,
		    ERR_reason_error_string(ERR_get_error()));
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* sig_hup - reload */
static void
sig_hup(evutil_socket_t sig, short what, void *arg)
{
	char	err[512];
	struct conf *fresh;

	(void)sig;
	(void)what;
	(void)arg;
	fresh = conf_load(ms->conf_path, ms->overrides, ms->noverrides, err,
	    sizeof(err));
	if (fresh == NULL) {
		log_warnx("reload failed, keeping the running configuration: %s",
		    err);
		return;
	}
	conf_reload_merge(fresh, ms->cf);
	if (conf_token_load(fresh, err, sizeof(err)) < 0) {
		/* A root-only token file after the drop: keep what we have. */
		log_warnx("reload: %s; keeping the running admin token", err);
		snprintf(fresh->admin_token, sizeof(fresh->admin_token), "%s",
		    ms->cf->admin_token);
	}
	if (dnsbl_reconfigure(fresh, err, sizeof(err)) < 0) {
		log_warnx("reload failed, keeping the running configuration: %s",
		    err);
		conf_free(fresh);
		return;
	}
	conf_free(ms->cf);
	ms->cf = fresh;
	log_info("configuration reloaded from %s",
	    ms->conf_path ? ms->conf_path : "defaults");
	bk_pool_flush();
	bk_probe();
}

/* grace_over - sessions had their time */
static void
grace_over(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	log_info("grace time over: ending %ld sessions", ms->nsess);
	event_base_loopexit(ms->base, NULL);
}

/* sig_term - stop accepting; let sessions finish */
static void
sig_term(evutil_socket_t sig, short what, void *arg)
{
	struct timeval tv;

	(void)what;
	(void)arg;
	if (ms->stopping)
		return;
	ms->stopping = 1;
	log_info("signal %d: stopping; %ld sessions have %lds to finish",
	    (int)sig, ms->nsess, ms->cf->grace_time / 1000);
	lst_close();
	bk_pool_flush();
	if (ms->nsess == 0) {
		event_base_loopexit(ms->base, NULL);
		return;
	}
	tv.tv_sec = ms->cf->grace_time / 1000;
	tv.tv_usec = (ms->cf->grace_time % 1000) * 1000;
	grace_timer = evtimer_new(ms->base, grace_over, NULL);
	evtimer_add(grace_timer, &tv);
}

/* sig_usr1 - log rotation */
static void
sig_usr1(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	(void)arg;
	log_info("reopening the event log");
	evlog_reopen();
}

/* drop_privileges - become `user` once everything is open */
static void
drop_privileges(const char *user)
{
	struct passwd *pw;

	if (*user == 0)
		return;
	if ((pw = getpwnam(user)) == NULL)
		fatalx("user %s: no such user", user);
	if (setgroups(1, &pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0)
		fatal("cannot become user %s", user);
	if (setuid(0) == 0)
		fatalx("could still regain root after dropping to %s", user);
	log_info("running as %s", user);
}

/* no_new_privs - nothing this process execs can gain privileges */
static void
no_new_privs(void)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		log_warn("prctl(PR_SET_NO_NEW_PRIVS)");
}

/* run_user - look up `user` before anything is opened for it */
static void
run_user(const char *user)
{
	struct passwd *pw;

	if (*user == 0 || geteuid() != 0)
		return;
	if ((pw = getpwnam(user)) == NULL)
		fatalx("user %s: no such user", user);
	run_as = 1;
	run_uid = pw->pw_uid;
	run_gid = pw->pw_gid;
}

/* user_can - whether the run user has `bits` (S_IROTH-style) on st */
static int
user_can(const struct stat *st, int bits)
{
	if (st->st_uid == run_uid)
		return (st->st_mode & (bits << 6)) == (mode_t)(bits << 6);
	if (st->st_gid == run_gid)
		return (st->st_mode & (bits << 3)) == (mode_t)(bits << 3);
	return (st->st_mode & bits) == (mode_t)bits;
}

/*
 * check_files - warn about files the dropped user will need: the
 * configuration (SIGHUP), an inline admin_token in a readable file, the
 * token file's mode
 */
static void
check_files(const struct conf *cf)
{
	struct stat st;

	if (ms->conf_path != NULL && stat(ms->conf_path, &st) == 0) {
		if (run_as && !user_can(&st, 4))
			log_warnx("%s is not readable by %s: SIGHUP will not "
			    "reload it (make it root-owned 0644 and keep the "
			    "token in admin_token_file)", ms->conf_path,
			    cf->user);
		if (*cf->admin_token && (st.st_mode & S_IROTH))
			log_warnx("%s holds admin_token and is readable by "
			    "everyone; move the token to admin_token_file "
			    "(mode 0600)", ms->conf_path);
	}
	if (*cf->admin_token_file && stat(cf->admin_token_file, &st) == 0 &&
	    (st.st_mode & (S_IRWXG | S_IRWXO)))
		log_warnx("admin_token_file %s is readable by others than "
		    "its owner (mode %03o); make it 0600",
		    cf->admin_token_file, (unsigned)(st.st_mode & 0777));
}

/* raise_nofile - as many descriptors as the hard limit allows */
static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* load_sigdb - signature files, or the default list */
static struct sigdb *
load_sigdb(const struct conf *cf)
{
	const char *paths[CONF_MAX_SIGFILES];
	struct sigdb *db;
	char	err[512];
	int	i;

	if (cf->nsignatures == 0)
		db = sigdb_load_default(err, sizeof(err));
	else {
		for (i = 0; i < cf->nsignatures; i++)
			paths[i] = cf->signatures[i];
		db = sigdb_load_files(paths, (size_t)cf->nsignatures, err,
		    sizeof(err));
	}
	if (db == NULL)
		log_warnx("signatures: %s; sessions get no OS label", err);
	return db;
}

/*
 * make_parent - create the directory that will hold path (one level);
 * with give set and a run user, a directory made here is that user's, and
 * an existing one the user cannot write to is reported (what: the
 * parameter, for the message)
 */
static void
make_parent(const char *path, int give, const char *what)
{
	char	dir[512], *slash;
	struct stat st;
	int	fd;

	if (*path == 0 || strlen(path) >= sizeof(dir))
		return;
	strcpy(dir, path);
	if ((slash = strrchr(dir, '/')) == NULL || slash == dir)
		return;
	*slash = 0;
	if (mkdir(dir, 0750) == 0) {
		log_info("created %s", dir);
		if (!give || !run_as)
			return;
		/* Through a descriptor: never chown what a link names. */
		if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC)) < 0 || fchown(fd, run_uid, run_gid) < 0)
			log_warn("%s: cannot give %s to the run user", what,
			    dir);
		if (fd >= 0)
			close(fd);
		return;
	}
	if (give && run_as && stat(dir, &st) == 0 && !user_can(&st, 3))
		log_warnx("%s: the run user cannot create files in %s, so "
		    "SIGUSR1 cannot reopen the file after rotation; give the "
		    "directory to that user", what, dir);
}

/* usage - command line help */
static void
usage(void)
{
	fprintf(stderr,
	    "usage: mailshaper -c FILE [-o name=value]... [-f] [-v] "
	    "[--check-config]\n"
	    "       mailshaper fingerprint [-r FILE | -i IFACE] [--db FILE]... "
	    "[--json] [--filter BPF]\n");
	exit(2);
}

/* daemon_main - the daemon's entry point */
int
daemon_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"check-config", no_argument, NULL, 'C'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct event *ev_hup, *ev_term, *ev_int, *ev_usr1;
	char	err[512];
	int	ch, foreground = 0, check = 0;

	ms = &the_ms;
	ms->overrides = calloc((size_t)argc + 1, sizeof(char *));
	while ((ch = getopt_long(argc, argv, "c:o:fvh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			ms->conf_path = optarg;
			break;
		case 'o':
			ms->overrides[ms->noverrides++] = optarg;
			break;
		case 'f':
			foreground = 1;
			break;
		case 'v':
			log_set_verbose(1);
			break;
		case 'C':
			check = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	ms->cf = conf_load(ms->conf_path, ms->overrides, ms->noverrides, err,
	    sizeof(err));
	if (ms->cf == NULL || conf_token_load(ms->cf, err, sizeof(err)) < 0) {
		fprintf(stderr, "mailshaper: %s\n", err);
		return 1;
	}
	if (check) {
		if (*ms->cf->tls_cert_file) {
			SSL_CTX *ctx = tls_server_ctx(ms->cf, err, sizeof(err));

			if (ctx == NULL) {
				fprintf(stderr, "mailshaper: %s: %s\n",
				    ms->conf_path ? ms->conf_path : "-o", err);
				return 1;
			}
			SSL_CTX_free(ctx);
		}
		printf("%s: ok\n", ms->conf_path ? ms->conf_path : "defaults");
		return 0;
	}
	log_init(foreground ? LOG_TO_STDERR : LOG_TO_SYSLOG,
	    ms->cf->syslog_name);
	run_user(ms->cf->user);
	check_files(ms->cf);
	signal(SIGPIPE, SIG_IGN);
	srand48((long)time(NULL) ^ (long)getpid());	/* exploration draws */
	raise_nofile();
	if ((ms->base = event_base_new()) == NULL)
		fatalx("cannot create the event loop");
	if (*ms->cf->tls_cert_file &&
	    (ms->tls = tls_server_ctx(ms->cf, err, sizeof(err))) == NULL)
		fatalx("%s", err);
	if (ms->cf->backend_tls) {
		ms->tls_client = SSL_CTX_new(TLS_client_method());
		if (ms->tls_client == NULL)
			fatalx("cannot create the backend TLS context");
		SSL_CTX_set_min_proto_version(ms->tls_client, TLS1_2_VERSION);
	}
	ms->sigdb = load_sigdb(ms->cf);
	if (lst_open(ms->cf, err, sizeof(err)) < 0)
		fatalx("%s", err);
	if (spool_init(ms->base, ms->cf->spool_dir, ms->cf->user, err,
	    sizeof(err)) < 0)
		fatalx("%s", err);
	make_parent(ms->cf->eventlog, 1, "eventlog");
	if (evlog_open(ms->cf->eventlog, err, sizeof(err)) < 0)
		fatalx("%s", err);
	if (run_as && evlog_chown(run_uid, run_gid, err, sizeof(err)) < 0)
		log_warnx("%s; SIGUSR1 cannot reopen it after rotation", err);
	if (strncmp(ms->cf->rep_store, "sqlite:", 7) == 0)
		make_parent(ms->cf->rep_store + 7, 0, "rep_store");
	if (rep_open(ms->base, ms->cf, err, sizeof(err)) < 0)
		fatalx("rep_store %s: %s", ms->cf->rep_store, err);
	if (dnsbl_init(ms->base, ms->cf, err, sizeof(err)) < 0)
		fatalx("%s", err);
	if (fb_open(ms->base, ms->cf, err, sizeof(err)) < 0)
		fatalx("%s", err);
	if (adm_open(ms->base, ms->cf, err, sizeof(err)) < 0)
		fatalx("%s", err);
	fcrdns_init(ms->base);
	if (psl_load(NULL, err, sizeof(err)) < 0)
		log_warnx("public suffix list: %s; organisational domains are "
		    "the last two labels", err);
	drop_privileges(ms->cf->user);
	if (spool_check(err, sizeof(err)) < 0)
		log_warnx("%s: messages beyond spool_memory will get 451", err);
	no_new_privs();

	ev_hup = evsignal_new(ms->base, SIGHUP, sig_hup, NULL);
	ev_term = evsignal_new(ms->base, SIGTERM, sig_term, NULL);
	ev_int = evsignal_new(ms->base, SIGINT, sig_term, NULL);
	ev_usr1 = evsignal_new(ms->base, SIGUSR1, sig_usr1, NULL);
	evsignal_add(ev_hup, NULL);
	evsignal_add(ev_term, NULL);
	evsignal_add(ev_int, NULL);
	evsignal_add(ev_usr1, NULL);
	bk_probe();
	log_info("mailshaper started: backend %s, identity %s%s",
	    ms->cf->backend.text,
	    conf_word("backend_identity", ms->cf->backend_identity),
	    ms->cf->observe ? ", observe mode" : "");

	event_base_dispatch(ms->base);

	sess_shutdown_all("service shutting down");
	sess_deinit();
	spool_deinit();
	bk_pool_flush();
	lst_close();
	bk_probe_cancel();
	log_info("stopped: accepted=%lu refused=%lu messages=%lu delivered=%lu "
	    "syn_missing=%lu violations=%lu backend_errors=%lu",
	    ms->st.accepted, ms->st.refused, ms->st.messages,
	    ms->st.delivered, ms->st.syn_missing, ms->st.violations,
	    ms->st.backend_errors);
	adm_close();
	fb_close();
	fcrdns_shutdown();
	dnsbl_shutdown();
	psl_free();
	rep_close();
	evlog_close();
	event_free(ev_hup);
	event_free(ev_term);
	event_free(ev_int);
	event_free(ev_usr1);
	if (grace_timer)
		event_free(grace_timer);
	shp_flush_cache();
	if (ms->sigdb)
		sigdb_free(ms->sigdb);
	if (ms->tls)
		SSL_CTX_free(ms->tls);
	if (ms->tls_client)
		SSL_CTX_free(ms->tls_client);
	event_base_free(ms->base);
	conf_free(ms->cf);
	free(ms->overrides);
	return 0;
}
