/*
 * test_tlsgen.c - cmocka tests for src/swarm/tlsgen.c
 *
 * What it tests: for each row of good_cases[] a certificate and key are
 * generated into a fresh temporary directory and read back with
 * PEM_read_X509()/PEM_read_PrivateKey(): the key is EC P-256 and matches
 * the certificate (X509_check_private_key), the certificate is self-signed
 * (X509_verify with its own key, issuer = subject), CN and subjectAltName
 * DNS are the name asked for, the validity is one day from about now, and
 * the key file's mode is 0600 (also when the file existed with 0644).
 * Two runs give two different keys and serial numbers.  bad_cases[] are
 * names refused with an error; an unwritable directory fails with the
 * path in the error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "swarm/tlsgen.h"

static const char *const good_cases[] = {
	"mx.mailshaper.test",
	"a",
	"MX-1.Example.ORG",
	/* 64 bytes: the longest CN X.509 allows */
	"abcdefghij.abcdefghij.abcdefghij.abcdefghij.abcdefghij.abcdefghi",
};

static const char *const bad_cases[] = {
	"",
	"mx example",
	"mx.example\n",
	"mx,O=evil",
	"mx/CN=evil",
	"\xc3\xa9.example",
	/* 65 bytes */
	"abcdefghij.abcdefghij.abcdefghij.abcdefghij.abcdefghij.abcdefghij",
};

struct tmp {
	char	dir[64];
	char	crt[128];
	char	key[128];
};

/* tmp_make - a fresh directory with the two file names in it */
static void
tmp_make(struct tmp *t)
{
	snprintf(t->dir, sizeof(t->dir), "/tmp/test_tlsgen.XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->crt, sizeof(t->crt), "%s/cert.pem", t->dir);
	snprintf(t->key, sizeof(t->key), "%s/key.pem", t->dir);
}

/* tmp_remove - the files and the directory */
static void
tmp_remove(struct tmp *t)
{
	unlink(t->crt);
	unlink(t->key);
	rmdir(t->dir);
}

/* load_cert - PEM_read_X509 from path */
static X509 *
load_cert(const char *path)
{
	FILE *fp = fopen(path, "r");
	X509 *x;

	assert_non_null(fp);
	x = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(x);
	return x;
}

/* load_key - PEM_read_PrivateKey from path */
static EVP_PKEY *
load_key(const char *path)
{
	FILE *fp = fopen(path, "r");
	EVP_PKEY *k;

	assert_non_null(fp);
	k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(k);
	return k;
}

/* check_pair - everything the certificate and key must be for cn */
static void
check_pair(const struct tmp *t, const char *cn)
{
	X509 *x = load_cert(t->crt);
	EVP_PKEY *k = load_key(t->key);
	char got[128], group[64];
	struct stat st;
	int days = -1, secs = -1;
	time_t now = time(NULL);

	assert_int_equal(X509_check_private_key(x, k), 1);
	assert_int_equal(X509_verify(x, k), 1);
	assert_int_equal(X509_NAME_cmp(X509_get_subject_name(x),
	    X509_get_issuer_name(x)), 0);
	assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(x),
	    NID_commonName, got, sizeof(got)) > 0);
	assert_string_equal(got, cn);
	assert_int_equal(X509_check_host(x, cn, strlen(cn), 0, NULL), 1);
	assert_int_equal(X509_check_host(x, "other.test", 0, 0, NULL), 0);
	assert_int_equal(X509_get_version(x), X509_VERSION_3);

	assert_true(EVP_PKEY_is_a(k, "EC"));
	assert_int_equal(EVP_PKEY_get_bits(k), 256);
	assert_int_equal(EVP_PKEY_get_utf8_string_param(k, "group", group,
	    sizeof(group), NULL), 1);
	assert_string_equal(group, "prime256v1");

	assert_int_equal(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x),
	    X509_get0_notAfter(x)), 1);
	assert_int_equal(days, 1);
	assert_int_equal(secs, 0);
	assert_true(X509_cmp_time(X509_get0_notBefore(x), &(time_t){ now + 5 })
	    < 0);
	assert_true(X509_cmp_time(X509_get0_notBefore(x), &(time_t){ now - 60 })
	    > 0);

	assert_int_equal(stat(t->key, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	X509_free(x);
	EVP_PKEY_free(k);
}

/* test_good - every row of good_cases[] */
static void
test_good(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good_cases) / sizeof(good_cases[0]); i++) {
		struct tmp t;
		char err[256] = "";

		tmp_make(&t);
		if (tlsgen_selfsigned(t.crt, t.key, good_cases[i], err,
		    sizeof(err)) != 0)
			fail_msg("\"%s\": %s", good_cases[i], err);
		check_pair(&t, good_cases[i]);
		tmp_remove(&t);
	}
}

/* test_existing_key_file - an existing 0644 file becomes 0600 */
static void
test_existing_key_file(void **state)
{
	struct tmp t;
	char err[256];
	FILE *fp;

	(void)state;
	tmp_make(&t);
	assert_non_null(fp = fopen(t.key, "w"));
	fputs("old contents, much longer than nothing at all\n", fp);
	fclose(fp);
	assert_int_equal(chmod(t.key, 0644), 0);
	assert_int_equal(tlsgen_selfsigned(t.crt, t.key, "mx.test", err,
	    sizeof(err)), 0);
	check_pair(&t, "mx.test");
	tmp_remove(&t);
}

/* test_fresh - two runs: different keys and serials */
static void
test_fresh(void **state)
{
	struct tmp a, b;
	char err[256];
	X509 *xa, *xb;
	EVP_PKEY *ka, *kb;

	(void)state;
	tmp_make(&a);
	tmp_make(&b);
	assert_int_equal(tlsgen_selfsigned(a.crt, a.key, "mx.test", err,
	    sizeof(err)), 0);
	assert_int_equal(tlsgen_selfsigned(b.crt, b.key, "mx.test", err,
	    sizeof(err)), 0);
	xa = load_cert(a.crt);
	xb = load_cert(b.crt);
	ka = load_key(a.key);
	kb = load_key(b.key);
	assert_int_not_equal(EVP_PKEY_eq(ka, kb), 1);
	assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(xa),
	    X509_get0_serialNumber(xb)), 0);
	assert_int_equal(X509_check_private_key(xa, kb), 0);
	X509_free(xa);
	X509_free(xb);
	EVP_PKEY_free(ka);
	EVP_PKEY_free(kb);
	tmp_remove(&a);
	tmp_remove(&b);
}

/* test_bad_names - every row of bad_cases[], and NULL: refused */
static void
test_bad_names(void **state)
{
	struct tmp t;
	size_t i;

	(void)state;
	tmp_make(&t);
	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		char err[256] = "";

		if (tlsgen_selfsigned(t.crt, t.key, bad_cases[i], err,
		    sizeof(err)) != -1)
			fail_msg("\"%s\" accepted", bad_cases[i]);
		assert_non_null(strstr(err, "bad certificate name"));
		assert_int_equal(access(t.key, F_OK), -1);
		assert_int_equal(access(t.crt, F_OK), -1);
	}
	{
		char err[256] = "";

		assert_int_equal(tlsgen_selfsigned(t.crt, t.key, NULL, err,
		    sizeof(err)), -1);
		assert_true(err[0] != '\0');
	}
	tmp_remove(&t);
}

/* test_unwritable - a missing directory: -1, the path in the error */
static void
test_unwritable(void **state)
{
	char err[256] = "";

	(void)state;
	assert_int_equal(tlsgen_selfsigned("/nonexistent.tlsgen/cert.pem",
	    "/nonexistent.tlsgen/key.pem", "mx.test", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent.tlsgen/key.pem"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_existing_key_file),
		cmocka_unit_test(test_fresh),
		cmocka_unit_test(test_bad_names),
		cmocka_unit_test(test_unwritable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
