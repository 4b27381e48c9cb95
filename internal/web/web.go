// Package web is the report screen: a plain HTML, CSS and JavaScript client of
// the report API, embedded in the binary so the product is usable without
// another front end.
//
// The screen is served at "/" and its files under /assets/<version>/, where
// version is a digest of the embedded files: an asset URL never changes
// content, so browsers may cache assets for a year, while the page itself is
// revalidated on every load and always names the current version.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// contentTypes are the types of the files the screen is made of; a file with
// another extension is not served.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
}

// securityHeaders confine the page to its own origin: scripts, styles and API
// calls come from chatreport itself, and no other site may frame it.
var securityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'",
	"X-Content-Type-Options": "nosniff",
	"Referrer-Policy":        "no-referrer",
	"X-Frame-Options":        "DENY",
}

const (
	indexName    = "index.html"
	assetsPrefix = "/assets/"
	// versionPlaceholder in index.html is replaced by the assets' version.
	versionPlaceholder = "__ASSETS__"
)

// asset is one embedded file, ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// site serves the screen.
type site struct {
	version string
	index   asset
	assets  map[string]asset // by file name, e.g. "app.js"
}

// DefaultTimeZone is the report time zone the page names when none is given.
const DefaultTimeZone = "America/Sao_Paulo"

// Handler serves the report screen in the default time zone.
func Handler() http.Handler { return HandlerIn(DefaultTimeZone) }

// HandlerIn serves the report screen showing times in timeZone (an IANA name,
// the API's report time zone): GET / is the page, GET
// /assets/<version>/<file> its styles, scripts and icons. Any other path is
// 404. Mount it at "/" next to the API's "/api/".
func HandlerIn(timeZone string) http.Handler {
	s := &site{assets: map[string]asset{}}
	sum := sha256.New()
	var index []byte
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(p, "static/")
		if name == indexName {
			index = body
			return nil
		}
		ct, ok := contentTypes[path.Ext(name)]
		if !ok {
			return nil
		}
		sum.Write([]byte(name))
		sum.Write(body)
		s.assets[name] = asset{body: body, contentType: ct, etag: etag(body)}
		return nil
	})
	if err != nil || index == nil {
		// The files are compiled in: this only happens to a broken build.
		panic("web: embedded screen is incomplete")
	}
	s.version = hex.EncodeToString(sum.Sum(nil))[:12]
	page := bytes.ReplaceAll(index, []byte(versionPlaceholder), []byte(assetsPrefix+s.version))
	page = bytes.Replace(page, []byte(`name="report-time-zone" content="`+DefaultTimeZone+`"`),
		[]byte(`name="report-time-zone" content="`+html.EscapeString(timeZone)+`"`), 1)
	s.index = asset{body: page, contentType: contentTypes[".html"], etag: etag(page)}
	return s
}

func etag(body []byte) string {
	h := sha256.Sum256(body)
	return `"` + hex.EncodeToString(h[:8]) + `"`
}

func (s *site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	for k, v := range securityHeaders {
		w.Header().Set(k, v)
	}
	switch p := r.URL.Path; {
	case p == "/" || p == "/"+indexName:
		// Revalidated on every load, so a new release is picked up at once.
		s.serve(w, r, s.index, "no-cache")
	case strings.HasPrefix(p, assetsPrefix):
		version, name, ok := strings.Cut(strings.TrimPrefix(p, assetsPrefix), "/")
		a, found := s.assets[name]
		if !ok || !found {
			http.NotFound(w, r)
			return
		}
		cache := "public, max-age=31536000, immutable"
		if version != s.version {
			// A page of another release (during a rolling deploy): serve
			// what we have, but do not let it stick under that URL.
			cache = "no-cache"
		}
		s.serve(w, r, a, cache)
	default:
		http.NotFound(w, r)
	}
}

func (s *site) serve(w http.ResponseWriter, r *http.Request, a asset, cache string) {
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", cache)
	h.Set("ETag", a.etag)
	// ServeContent answers If-None-Match with 304, HEAD and ranges.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}
