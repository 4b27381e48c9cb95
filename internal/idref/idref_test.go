package idref

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

const phone = "+5511999990000"

var refShape = regexp.MustCompile(`^id#[0-9a-f]{24}$`)

// TestRefKeyed: a reference is stable for one key, changes with the key,
// and is not an unkeyed hash anyone can compute; the zero Key is one random
// key for the whole process.
func TestRefKeyed(t *testing.T) {
	a := New([]byte("0123456789abcdef-key-a"))
	b := New([]byte("0123456789abcdef-key-b"))
	if got := a.Of(phone); !refShape.MatchString(got) {
		t.Fatalf("reference %q, want id# and 24 hex digits", got)
	}
	if a.Of(phone) != New([]byte("0123456789abcdef-key-a")).Of(phone) {
		t.Error("one key gives two references of one id")
	}
	if a.Of(phone) == b.Of(phone) {
		t.Error("two keys give the same reference")
	}
	if a.Of(phone) == a.Of(phone+"1") {
		t.Error("two ids share a reference")
	}
	if strings.Contains(a.Of(phone), "5511") {
		t.Error("the reference quotes the id")
	}
	var zero Key
	if zero.Of(phone) != New(nil).Of(phone) || zero.Of(phone) != (Key{}).Of(phone) {
		t.Error("the process's random key changes within the process")
	}
	if zero.Of(phone) == a.Of(phone) || zero.Configured() || !a.Configured() {
		t.Error("the zero Key is a configured one")
	}
}

func TestDocAndRedact(t *testing.T) {
	k := New([]byte("0123456789abcdef"))
	if got, want := k.Doc("chatreport-keys-v1", "acme/"+phone), "chatreport-keys-v1/"+k.Of("acme/"+phone); got != want {
		t.Errorf("Doc = %q, want %q", got, want)
	}
	if got := k.Doc("", phone); got != k.Of(phone) {
		t.Errorf("Doc without index = %q", got)
	}
	reason := "[acme/" + phone + "]: version conflict"
	if got, want := k.Redact(reason, "acme/"+phone), "["+k.Of("acme/"+phone)+"]: version conflict"; got != want {
		t.Errorf("Redact = %q, want %q", got, want)
	}
	if got := k.Redact(reason, ""); got != reason {
		t.Errorf("Redact of no id = %q", got)
	}
}

// TestKeyNeverPrints: a Key printed (as a field of a config dump, say)
// shows no secret.
func TestKeyNeverPrints(t *testing.T) {
	const secret = "very-secret-ref-key"
	k := New([]byte(secret))
	holder := struct{ K Key }{k}
	hexSecret := fmt.Sprintf("%x", secret)
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v", holder, holder, holder), fmt.Sprintf("%#v", k),
		fmt.Sprintf("%d %x %X %s %q", k, k, k, k, k), fmt.Sprintf("%d %x", holder, holder)} {
		if strings.Contains(s, secret) || strings.Contains(strings.ToLower(s), hexSecret) || strings.Contains(s, fmt.Sprint([]byte(secret))[1:10]) {
			t.Errorf("%q shows the secret", s)
		}
	}
}
