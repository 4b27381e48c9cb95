package api

import (
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"

	"github.com/chatreport/chatreport/internal/event"
)

// Keys maps API keys to the tenant each may read. Only SHA-256 hashes of the
// keys are held.
type Keys struct {
	byHash map[[sha256.Size]byte]string
}

// NewKeys returns an empty key table.
func NewKeys() *Keys {
	return &Keys{byHash: map[[sha256.Size]byte]string{}}
}

// AddKey registers a key, in the clear, for tenant.
func (k *Keys) AddKey(tenant, key string) error {
	return k.Add(tenant, sha256.Sum256([]byte(key)))
}

// Add registers the SHA-256 hash of a key for tenant.
func (k *Keys) Add(tenant string, hash [sha256.Size]byte) error {
	if other, ok := k.byHash[hash]; ok && other != tenant {
		return fmt.Errorf("api keys: tenants %q and %q share a key", other, tenant)
	}
	k.byHash[hash] = tenant
	return nil
}

// Len is the number of keys.
func (k *Keys) Len() int {
	if k == nil {
		return 0
	}
	return len(k.byHash)
}

// lookup returns the tenant of key. The key is hashed before the lookup, so
// the comparison does not leak the stored keys.
func (k *Keys) lookup(key string) (string, bool) {
	if k == nil {
		return "", false
	}
	tenant, ok := k.byHash[sha256.Sum256([]byte(key))]
	return tenant, ok
}

// JWTConfig turns on JWT bearer tokens, next to API keys: a token signed by
// the platform's identity provider names the tenant in a claim.
type JWTConfig struct {
	// HS256Secret verifies HS256 tokens; at least 32 bytes (RFC 7518 3.2).
	HS256Secret []byte
	// RS256PublicKeyPEM verifies RS256 tokens: a PEM public key (PKIX or
	// PKCS #1) or certificate.
	RS256PublicKeyPEM []byte
	// TenantClaim is the claim holding the tenant; "tenant" when empty.
	TenantClaim string
	// Issuer and Audience, when set, must match the iss and aud claims.
	Issuer   string
	Audience string
	// Leeway tolerates clock skew when checking exp and nbf.
	Leeway time.Duration
}

// DefaultTenantClaim is the claim holding the tenant unless configured.
const DefaultTenantClaim = "tenant"

// minHS256Secret is the shortest HS256 secret accepted: the hash's size.
const minHS256Secret = 32

// jwtVerifier checks JWT bearer tokens.
type jwtVerifier struct {
	secret []byte
	public *rsa.PublicKey
	claim  string
	parser *jwt.Parser
}

// Check reports what New would refuse of c: a secret too short, a public
// key that does not parse, neither. A command's --check-config runs it.
func (c *JWTConfig) Check() error {
	_, err := newJWTVerifier(c)
	return err
}

func newJWTVerifier(c *JWTConfig) (*jwtVerifier, error) {
	v := &jwtVerifier{claim: c.TenantClaim}
	if v.claim == "" {
		v.claim = DefaultTenantClaim
	}
	var methods []string
	if len(c.HS256Secret) > 0 {
		if len(c.HS256Secret) < minHS256Secret {
			return nil, fmt.Errorf("api: the JWT HS256 secret must have at least %d bytes", minHS256Secret)
		}
		v.secret = c.HS256Secret
		methods = append(methods, jwt.SigningMethodHS256.Alg())
	}
	if len(c.RS256PublicKeyPEM) > 0 {
		key, err := jwt.ParseRSAPublicKeyFromPEM(c.RS256PublicKeyPEM)
		if err != nil {
			return nil, fmt.Errorf("api: the JWT RS256 public key: %w", err)
		}
		v.public = key
		methods = append(methods, jwt.SigningMethodRS256.Alg())
	}
	if len(methods) == 0 {
		return nil, errors.New("api: JWT enabled without an HS256 secret or an RS256 public key")
	}
	opts := []jwt.ParserOption{
		// Only the configured algorithms: a token cannot pick "none", nor
		// HS256 keyed with the public key.
		jwt.WithValidMethods(methods),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(c.Leeway),
	}
	if c.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(c.Issuer))
	}
	if c.Audience != "" {
		opts = append(opts, jwt.WithAudience(c.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// tenant verifies a token and returns its tenant claim.
func (v *jwtVerifier) tenant(raw string) (string, error) {
	claims := jwt.MapClaims{}
	_, err := v.parser.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		switch t.Method.Alg() {
		case jwt.SigningMethodHS256.Alg():
			return v.secret, nil
		case jwt.SigningMethodRS256.Alg():
			return v.public, nil
		}
		return nil, errors.New("unexpected algorithm") // WithValidMethods rejects it first
	})
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "", errors.New("token expired")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "", errors.New("token not valid yet")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "", errors.New("token without exp")
	case err != nil:
		return "", errors.New("invalid token")
	}
	tenant, _ := claims[v.claim].(string)
	if !event.IsToken(tenant, 63, false) {
		return "", fmt.Errorf("token without a tenant in claim %q", v.claim)
	}
	return tenant, nil
}

// looksLikeJWT reports whether s has the three dot-separated parts of a
// JWS compact serialisation.
func looksLikeJWT(s string) bool { return strings.Count(s, ".") == 2 }

var errNoCredentials = errors.New("missing credentials")

// credentials returns the tenant the request's bearer credential grants: an
// API key, or else a JWT when JWTs are enabled.
func (s *Server) credentials(r *http.Request) (string, error) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", errNoCredentials
	}
	if tenant, ok := s.keys.lookup(token); ok {
		return tenant, nil
	}
	if s.jwt != nil && looksLikeJWT(token) {
		return s.jwt.tenant(token)
	}
	return "", errors.New("unknown API key")
}

const tenantKey = "chatreport.tenant"

// authenticate admits requests that present a known key or a valid token
// and records their tenant.
func (s *Server) authenticate(c *gin.Context) {
	tenant, err := s.credentials(c.Request)
	if err != nil {
		challenge := `Bearer realm="chatreport"`
		if !errors.Is(err, errNoCredentials) {
			challenge += `, error="invalid_token"`
		}
		c.Header("WWW-Authenticate", challenge)
		detail := "Send Authorization: Bearer <API key>"
		if s.jwt != nil {
			detail += " or Bearer <JWT>"
		}
		s.problem(c, http.StatusUnauthorized, "Unauthorized", detail+". "+capitalize(err.Error())+".", nil)
		c.Abort()
		return
	}
	c.Set(tenantKey, tenant)
	c.Next()
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
