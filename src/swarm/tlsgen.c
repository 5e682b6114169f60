/*
 * tlsgen.c - a throw-away self-signed certificate for the simulation
 *
 * Exports tlsgen_selfsigned(): a fresh EC P-256 key and a self-signed
 * X.509 v3 certificate for it (CN=cn, subjectAltName DNS:cn, valid from
 * now for TLSGEN_DAYS), both written as PEM.  The key file is created
 * with mode 0600 (and set to 0600 if it existed); the certificate file
 * gets the usual mode under the umask.  Existing files are overwritten.
 *
 * Memory: everything allocated is freed before returning; nothing is kept.
 * On failure either file may be left empty or partly written.  It is an
 * error to pass a cn that is not a host name ([A-Za-z0-9.-], 1 to
 * TLSGEN_CN_MAX bytes): it is refused, with a reason in err.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "swarm/tlsgen.h"

/* tlsgen_fail - err = what failed, with OpenSSL's reason; returns -1 */
static int
tlsgen_fail(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	char buf[256] = "";

	if (e != 0)
		ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errlen, "%s%s%s", what, e ? ": " : "", buf);
	ERR_clear_error();
	return -1;
}

/* tlsgen_valid_cn - a host name: [A-Za-z0-9.-], 1 to TLSGEN_CN_MAX bytes */
static int
tlsgen_valid_cn(const char *cn)
{
	size_t n, i;

	if (cn == NULL || (n = strlen(cn)) == 0 || n > TLSGEN_CN_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		char c = cn[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '-'))
			return 0;
	}
	return 1;
}

/* tlsgen_serial - a random positive 63-bit serial number; 0 or -1 */
static int
tlsgen_serial(X509 *x)
{
	unsigned char r[8];
	BIGNUM *bn;
	int ok;

	if (RAND_bytes(r, sizeof(r)) != 1)
		return -1;
	r[0] &= 0x7f;
	r[0] |= 0x01;			/* never zero */
	if ((bn = BN_bin2bn(r, sizeof(r), NULL)) == NULL)
		return -1;
	ok = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
	BN_free(bn);
	return ok ? 0 : -1;
}

/* tlsgen_san - add subjectAltName DNS:cn; 0 or -1 */
static int
tlsgen_san(X509 *x, const char *cn)
{
	GENERAL_NAMES *gens;
	GENERAL_NAME *gen;
	ASN1_IA5STRING *ia5;
	int ok = 0;

	if ((gens = sk_GENERAL_NAME_new_null()) == NULL)
		return -1;
	if ((gen = GENERAL_NAME_new()) != NULL &&
	    (ia5 = ASN1_IA5STRING_new()) != NULL) {
		if (ASN1_STRING_set(ia5, cn, -1) == 1) {
			GENERAL_NAME_set0_value(gen, GEN_DNS, ia5);
			if (sk_GENERAL_NAME_push(gens, gen) > 0) {
				gen = NULL;
				ok = X509_add1_ext_i2d(x, NID_subject_alt_name,
				    gens, 0, X509V3_ADD_DEFAULT) == 1;
			}
		} else
			ASN1_IA5STRING_free(ia5);
	}
	GENERAL_NAME_free(gen);
	GENERAL_NAMES_free(gens);
	return ok ? 0 : -1;
}

/* tlsgen_cert - the self-signed certificate for key; NULL on failure */
static X509 *
tlsgen_cert(EVP_PKEY *key, const char *cn)
{
	X509 *x;
	X509_NAME *name;

	if ((x = X509_new()) == NULL)
		return NULL;
	if (X509_set_version(x, X509_VERSION_3) != 1 || tlsgen_serial(x) ||
	    X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x),
	    (long)TLSGEN_DAYS * 86400) == NULL ||
	    (name = X509_get_subject_name(x)) == NULL ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, name) != 1 ||
	    X509_set_pubkey(x, key) != 1 || tlsgen_san(x, cn) ||
	    X509_sign(x, key, EVP_sha256()) == 0) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* tlsgen_write_key - the key as PEM (PKCS#8), file mode 0600; 0 or -1 */
static int
tlsgen_write_key(const char *path, EVP_PKEY *key, char *err, size_t errlen)
{
	FILE *fp;
	int fd, ok;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) == -1 || fchmod(fd, 0600) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	if ((fp = fdopen(fd, "w")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	ok = PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL) == 1;
	if (fclose(fp) != 0 && ok) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	return ok ? 0 : tlsgen_fail(err, errlen, "cannot write the key");
}

/* tlsgen_write_cert - the certificate as PEM; 0 or -1 */
static int
tlsgen_write_cert(const char *path, X509 *x, char *err, size_t errlen)
{
	FILE *fp;
	int ok;

	if ((fp = fopen(path, "we")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	ok = PEM_write_X509(fp, x) == 1;
	if (fclose(fp) != 0 && ok) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	return ok ? 0 : tlsgen_fail(err, errlen, "cannot write the certificate");
}

/* tlsgen_selfsigned - write a new key and self-signed certificate; 0 or
 * -1 with err filled */
int
tlsgen_selfsigned(const char *cert_path, const char *key_path,
    const char *cn, char *err, size_t errlen)
{
	EVP_PKEY *key;
	X509 *x;
	int rc;

	if (!tlsgen_valid_cn(cn)) {
		snprintf(err, errlen, "bad certificate name (want a host name "
		    "of 1 to %d bytes)", TLSGEN_CN_MAX);
		return -1;
	}
	ERR_clear_error();
	if ((key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) == NULL)
		return tlsgen_fail(err, errlen, "cannot make a P-256 key");
	if ((x = tlsgen_cert(key, cn)) == NULL) {
		EVP_PKEY_free(key);
		return tlsgen_fail(err, errlen, "cannot make the certificate");
	}
	rc = tlsgen_write_key(key_path, key, err, errlen);
	if (rc == 0)
		rc = tlsgen_write_cert(cert_path, x, err, errlen);
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}
