package api

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
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
func (k *Keys) Len() int { return len(k.byHash) }

var errNoCredentials = errors.New("missing credentials")

// tenant returns the tenant whose key the request presents. The key is hashed
// before the lookup, so the comparison does not leak the stored keys.
func (k *Keys) tenant(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", errNoCredentials
	}
	tenant, ok := k.byHash[sha256.Sum256([]byte(strings.TrimSpace(token)))]
	if !ok {
		return "", errors.New("unknown API key")
	}
	return tenant, nil
}

const tenantKey = "chatreport.tenant"

// authenticate admits requests that present a known key and records their tenant.
func (s *Server) authenticate(c *gin.Context) {
	tenant, err := s.keys.tenant(c.Request)
	if err != nil {
		c.Header("WWW-Authenticate", `Bearer realm="chatreport"`)
		s.problem(c, http.StatusUnauthorized, "Unauthorized", "Send Authorization: Bearer <API key>. "+capitalize(err.Error())+".", nil)
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
