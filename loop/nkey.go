package loop

// Concurrency: pure functions over their arguments; verifyNonce may run
// on any goroutine.

import (
	"crypto/rand"
	"encoding/base64"

	"github.com/nats-io/nkeys"
)

// nonceRawLen random bytes make a nonce; INFO carries them base64 (raw
// URL alphabet) as nats-server does, and an nkey user signs that text.
const nonceRawLen = 11

// newNonce returns a fresh nonce for one connection's INFO.
func newNonce() []byte {
	var raw [nonceRawLen]byte
	_, _ = rand.Read(raw[:])
	out := make([]byte, base64.RawURLEncoding.EncodedLen(nonceRawLen))
	base64.RawURLEncoding.Encode(out, raw[:])
	return out
}

// validUserNkey reports whether k is a public user nkey ("U...").
func validUserNkey(k string) bool { return nkeys.IsValidPublicUserKey(k) }

// verifyNonce reports whether sig (base64, URL or standard alphabet) is
// the signature of nonce by the private key of public user nkey pub.
func verifyNonce(pub, sig string, nonce []byte) bool {
	if sig == "" || len(nonce) == 0 {
		return false
	}
	raw, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		if raw, err = base64.StdEncoding.DecodeString(sig); err != nil {
			return false
		}
	}
	kp, err := nkeys.FromPublicKey(pub)
	if err != nil {
		return false
	}
	return kp.Verify(nonce, raw) == nil
}
