package jobs

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// The headers of a callback request (docs/jobs.md, "Callbacks").
const (
	// HeaderDelivery is the delivery id: the same on every attempt of one
	// delivery, so a receiver dedupes on it.
	HeaderDelivery = "X-Millrace-Delivery"
	// HeaderJob is the id of the job whose status is the body.
	HeaderJob = "X-Millrace-Job"
	// HeaderSignature is Sign(secret, body).
	HeaderSignature = "X-Millrace-Signature"
)

const signaturePrefix = "sha256="

// Sign returns the HeaderSignature value for body: "sha256=" followed by
// the lowercase hex HMAC-SHA256 of body keyed with secret (71 bytes). It is
// the scheme of GitHub's X-Hub-Signature-256 webhook header, so receivers
// can reuse the code they verify GitHub deliveries with.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return signaturePrefix + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature reports whether header, a HeaderSignature value, is the
// signature of body with secret (Sign). The digest is compared in constant
// time; hex digits may be of either case. A header without the "sha256="
// prefix, or whose digest is not 64 hex digits, is false.
func VerifySignature(secret, body []byte, header string) bool {
	digest, ok := strings.CutPrefix(header, signaturePrefix)
	if !ok {
		return false
	}
	got, err := hex.DecodeString(digest)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hmac.Equal(got, m.Sum(nil))
}
