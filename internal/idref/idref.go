// Package idref names identifiers that may hold a contact in log lines,
// error texts and dead-letter reasons: a contact's id (often a phone
// number), a producer's event_id (which may embed one), and the store's
// document ids made of them. Each is replaced by a reference, "id#" and 24
// hex digits: HMAC-SHA256 of the identifier under a secret key, cut to 96
// bits. Without the key a reference cannot be checked against guesses (an
// unkeyed hash of a phone number is undone by hashing every number, which
// takes minutes); with it, an operator who knows an identifier finds its
// reference (`chatreport ref`). Every reference of the codebase is made
// here, by one rule.
package idref

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"sync"
)

// MinKeyBytes is the shortest configured key accepted (log.ref_key): a
// shorter one could itself be guessed.
const MinKeyBytes = 16

// refBytes is how much of the HMAC a reference keeps: 96 bits, so that two
// identifiers of one log practically never share a reference.
const refBytes = 12

// Prefix starts every reference.
const Prefix = "id#"

// Key makes references. The zero Key is the process's own random key
// (Random): its references match only within one process's log lines.
// A Key never prints its secret.
type Key struct {
	secret []byte
}

// New is the Key of secret; an empty secret is the process's random key.
func New(secret []byte) Key {
	if len(secret) == 0 {
		return Key{}
	}
	return Key{secret: append([]byte(nil), secret...)}
}

// processKey is drawn once per process, on first use, and never changes:
// every unconfigured Key of the process shares it, so that its stores,
// ingester and replay name an identifier alike. (A package variable
// because the zero Key must work wherever a Key is left unset — a
// RejectedError built in a test, a store opened without the setting —
// and a key per value would make references that match nothing.)
var processKey = sync.OnceValue(func() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24)
	return b
})

// Configured reports whether k is a configured key rather than the
// process's random one.
func (k Key) Configured() bool { return len(k.secret) > 0 }

// Of is the reference of id.
func (k Key) Of(id string) string {
	secret := k.secret
	if len(secret) == 0 {
		secret = processKey()
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(id))
	sum := m.Sum(nil)
	return Prefix + hex.EncodeToString(sum[:refBytes])
}

// Scoped is the reference of a tenant's id — an event_id, a session key —
// that of "<tenant>/<id>", which is also the id of its Elasticsearch
// document, so that a log line naming an event and the store's error
// naming its document agree.
func (k Key) Scoped(tenant, id string) string { return k.Of(tenant + "/" + id) }

// Doc names the document id in index ("" when unknown): "<index>/id#…".
func (k Key) Doc(index, id string) string {
	if index == "" {
		return k.Of(id)
	}
	return index + "/" + k.Of(id)
}

// Redact replaces id in text (a reason Elasticsearch gave, which often
// quotes the document's id) by its reference.
func (k Key) Redact(text, id string) string {
	if id == "" || !strings.Contains(text, id) {
		return text
	}
	return strings.ReplaceAll(text, id, k.Of(id))
}

// String hides the secret from fmt and zap.
func (k Key) String() string {
	if k.Configured() {
		return "[redacted]"
	}
	return "[per-process]"
}

// Format is String for every verb, %#v included (%d or %x would print a
// byte slice's contents otherwise).
func (k Key) Format(f fmt.State, _ rune) { io.WriteString(f, k.String()) } //nolint:errcheck // fmt ignores it
