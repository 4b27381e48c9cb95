package api

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var hsSecret = []byte("0123456789abcdef0123456789abcdef-test-secret")

func rsaKey(t *testing.T) (*rsa.PrivateKey, []byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func sign(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestJWT(t *testing.T) {
	rsaPriv, rsaPEM := rsaKey(t)
	otherPriv, _ := rsaKey(t)
	// The tokens' exp and nbf are checked against the real clock (the
	// library's), not the API's test clock.
	now := time.Now()
	valid := func(extra jwt.MapClaims) jwt.MapClaims {
		c := jwt.MapClaims{"tenant": "acme", "exp": now.Add(time.Hour).Unix(), "sub": "operator-1"}
		for k, v := range extra {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	cfg := testConfig(t)
	cfg.JWT = &JWTConfig{HS256Secret: hsSecret, RS256PublicKeyPEM: rsaPEM, Issuer: "https://id.example", Leeway: 5 * time.Second}
	withIss := func(extra jwt.MapClaims) jwt.MapClaims {
		c := valid(extra)
		if _, ok := extra["iss"]; !ok {
			c["iss"] = "https://id.example"
		}
		return c
	}
	tests := []struct {
		name   string
		token  string
		tenant string // "" : 401
	}{
		{"HS256", sign(t, jwt.SigningMethodHS256, hsSecret, withIss(nil)), "acme"},
		{"RS256", sign(t, jwt.SigningMethodRS256, rsaPriv, withIss(jwt.MapClaims{"tenant": "globex"})), "globex"},
		{"nbf in the past", sign(t, jwt.SigningMethodHS256, hsSecret, withIss(jwt.MapClaims{"nbf": now.Add(-time.Minute).Unix()})), "acme"},
		{"expired", sign(t, jwt.SigningMethodHS256, hsSecret, withIss(jwt.MapClaims{"exp": now.Add(-time.Minute).Unix()})), ""},
		{"not valid yet", sign(t, jwt.SigningMethodHS256, hsSecret, withIss(jwt.MapClaims{"nbf": now.Add(time.Hour).Unix()})), ""},
		{"no exp", sign(t, jwt.SigningMethodHS256, hsSecret, withIss(jwt.MapClaims{"exp": nil})), ""},
		{"wrong secret", sign(t, jwt.SigningMethodHS256, []byte("another secret, also 32 bytes long!!"), withIss(nil)), ""},
		{"wrong RSA key", sign(t, jwt.SigningMethodRS256, otherPriv, withIss(nil)), ""},
		{"HS256 keyed with the public key", sign(t, jwt.SigningMethodHS256, rsaPEM, withIss(nil)), ""},
		{"HS512", sign(t, jwt.SigningMethodHS512, hsSecret, withIss(nil)), ""},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, withIss(nil)), ""},
		{"no tenant", sign(t, jwt.SigningMethodHS256, hsSecret, withIss(jwt.MapClaims{"tenant": nil})), ""},
		{"tenant not a string", sign(t, jwt.SigningMethodHS256, hsSecret, withIss(jwt.MapClaims{"tenant": 7})), ""},
		{"tenant not a tenant", sign(t, jwt.SigningMethodHS256, hsSecret, withIss(jwt.MapClaims{"tenant": "Acme Corp"})), ""},
		{"wrong issuer", sign(t, jwt.SigningMethodHS256, hsSecret, withIss(jwt.MapClaims{"iss": "https://evil.example"})), ""},
		{"no issuer", sign(t, jwt.SigningMethodHS256, hsSecret, valid(nil)), ""},
		{"tampered", sign(t, jwt.SigningMethodHS256, hsSecret, withIss(nil)) + "x", ""},
		{"garbage with dots", "a.b.c", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := &fakeStore{}
			s := newServer(t, cfg, store)
			w := do(s, http.MethodGet, "/api/v1/sessions", tc.token, "")
			if tc.tenant == "" {
				if w.Code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") != `Bearer realm="chatreport", error="invalid_token"` ||
					w.Header().Get("Content-Type") != "application/problem+json" {
					t.Fatalf("%d %v %s", w.Code, w.Header(), w.Body)
				}
				return
			}
			if w.Code != http.StatusOK {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			if f, _, _ := store.last(); f.Tenant != tc.tenant {
				t.Fatalf("tenant %q, want %q", f.Tenant, tc.tenant)
			}
		})
	}
	// API keys keep working next to JWTs.
	if w := do(newServer(t, cfg, &fakeStore{}), http.MethodGet, "/api/v1/sessions", acmeKey, ""); w.Code != http.StatusOK {
		t.Fatalf("API key with JWT enabled: %d", w.Code)
	}
}

func TestJWTConfig(t *testing.T) {
	_, rsaPEM := rsaKey(t)
	now := time.Now()
	// A custom tenant claim and audience, JWT only (no API keys).
	cfg := testConfig(t)
	cfg.Keys = nil
	cfg.JWT = &JWTConfig{HS256Secret: hsSecret, TenantClaim: "org", Audience: "chatreport"}
	store := &fakeStore{}
	s := newServer(t, cfg, store)
	good := sign(t, jwt.SigningMethodHS256, hsSecret, jwt.MapClaims{"org": "globex", "aud": "chatreport", "exp": now.Add(time.Minute).Unix()})
	if w := do(s, http.MethodGet, "/api/v1/sessions", good, ""); w.Code != http.StatusOK {
		t.Fatalf("custom claim: %d %s", w.Code, w.Body)
	}
	if f, _, _ := store.last(); f.Tenant != "globex" {
		t.Fatalf("tenant %q", f.Tenant)
	}
	for name, token := range map[string]string{
		"default claim only": sign(t, jwt.SigningMethodHS256, hsSecret, jwt.MapClaims{"tenant": "globex", "aud": "chatreport", "exp": now.Add(time.Minute).Unix()}),
		"wrong audience":     sign(t, jwt.SigningMethodHS256, hsSecret, jwt.MapClaims{"org": "globex", "aud": "other", "exp": now.Add(time.Minute).Unix()}),
		"an API key":         acmeKey,
	} {
		if w := do(s, http.MethodGet, "/api/v1/sessions", token, ""); w.Code != http.StatusUnauthorized {
			t.Errorf("%s: %d", name, w.Code)
		}
	}

	for name, c := range map[string]Config{
		"no keys, no JWT":  {CursorKey: testCursorKey},
		"short secret":     {CursorKey: testCursorKey, JWT: &JWTConfig{HS256Secret: []byte("short")}},
		"bad PEM":          {CursorKey: testCursorKey, JWT: &JWTConfig{RS256PublicKeyPEM: []byte("-----BEGIN PUBLIC KEY-----\nxx\n-----END PUBLIC KEY-----\n")}},
		"JWT without keys": {CursorKey: testCursorKey, JWT: &JWTConfig{}},
		"no cursor key":    {Keys: testConfig(t).Keys},
	} {
		if _, err := New(c, &fakeStore{}, nil); err == nil {
			t.Errorf("%s: New accepted it", name)
		} else if strings.Contains(err.Error(), string(hsSecret)) {
			t.Errorf("%s: the error shows the secret", name)
		}
	}
	if _, err := New(Config{CursorKey: testCursorKey, JWT: &JWTConfig{RS256PublicKeyPEM: rsaPEM}}, &fakeStore{}, nil); err != nil {
		t.Fatalf("RS256 only: %v", err)
	}
}
