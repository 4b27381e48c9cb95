// Package api is the report's HTTP API (Gin): it validates the report filters,
// scopes every query to the caller's tenant and renders sessions and
// conversations. docs/api.md and openapi.json describe it.
package api

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/event"
	"github.com/chatreport/chatreport/internal/report"
)

// Store answers report queries, always within one tenant.
type Store interface {
	// Search returns one page of the sessions f matches, newest first.
	Search(ctx context.Context, f report.Filter, p report.Page) (report.Result, error)
	// Session returns a session with its events, or report.ErrNotFound.
	Session(ctx context.Context, tenant, id string) (report.Detail, error)
	// Export encodes every session f matches with encoders newEncoder
	// returns (several may work at once, each on one goroutine) and passes
	// them to emit in Search's order, a chunk of whole sessions at a time,
	// without holding them all in memory; it stops at emit's first error.
	Export(ctx context.Context, f report.Filter, newEncoder func() report.Encoder, emit report.Emit) error
	// Facets counts tags, info keys and channels of the sessions started
	// in [from, to).
	Facets(ctx context.Context, tenant string, from, to time.Time) (report.Facets, error)
}

// Config configures the API.
type Config struct {
	// Keys are the API keys; they may be empty when JWT is set.
	Keys *Keys
	// JWT, when set, also admits JWT bearer tokens.
	JWT *JWTConfig
	// Location is the report time zone: dates without a time are days there.
	Location *time.Location
	// CursorKey signs page cursors; every instance must share it.
	CursorKey []byte
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Observe, when set, sees every request: its route (the pattern, never
	// the path), status and latency, for metrics.
	Observe func(method, route string, status int, latency time.Duration)
}

// Server serves the report API.
type Server struct {
	store   Store
	keys    *Keys
	jwt     *jwtVerifier
	loc     *time.Location
	cursor  *report.CursorCodec
	now     func() time.Time
	observe func(method, route string, status int, latency time.Duration)
	log     *zap.Logger
	engine  *gin.Engine
}

// maxBodyBytes bounds a search body: a filter is small.
const maxBodyBytes = 1 << 20

// New returns the API server.
func New(cfg Config, store Store, log *zap.Logger) (*Server, error) {
	if cfg.Keys.Len() == 0 && cfg.JWT == nil {
		return nil, errors.New("api: no API keys and no JWT configured")
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if len(cfg.CursorKey) == 0 {
		return nil, errors.New("api: no cursor key")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = zap.NewNop()
	}
	s := &Server{
		store: store, keys: cfg.Keys, loc: cfg.Location, cursor: report.NewCursorCodec(cfg.CursorKey),
		now: cfg.Now, observe: cfg.Observe, log: log,
	}
	if cfg.JWT != nil {
		v, err := newJWTVerifier(cfg.JWT)
		if err != nil {
			return nil, err
		}
		s.jwt = v
	}
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.HandleMethodNotAllowed = true
	e.Use(s.logRequests, s.recover)
	v1 := e.Group("/api/v1", s.authenticate)
	v1.GET("/sessions", s.listSessions)
	v1.POST("/sessions/search", s.searchSessions)
	v1.GET("/sessions/:id", s.getSession)
	v1.GET("/sessions/:id/transcript", s.getTranscript)
	v1.GET("/export", s.export)
	v1.GET("/facets", s.facets)
	v1.GET("/filter/rules", s.rules)
	v1.GET("/openapi.json", s.openAPI)
	// Unknown routes under /api/ also need credentials: without them, a
	// caller learns nothing, not even which routes exist.
	e.NoRoute(s.authenticateAPI, func(c *gin.Context) {
		s.problem(c, http.StatusNotFound, "Not Found", "No such route.", nil)
	})
	e.NoMethod(s.authenticateAPI, func(c *gin.Context) {
		s.problem(c, http.StatusMethodNotAllowed, "Method Not Allowed", "This route does not take "+c.Request.Method+".", nil)
	})
	s.engine = e
	return s, nil
}

// ServeHTTP serves a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.engine.ServeHTTP(w, r) }

func (s *Server) authenticateAPI(c *gin.Context) {
	if strings.HasPrefix(c.Request.URL.Path, "/api/") {
		s.authenticate(c)
	}
}

// logRequests logs the route, never the raw query or body: filters carry
// phone numbers, names and words of messages.
func (s *Server) logRequests(c *gin.Context) {
	start := time.Now()
	c.Next()
	latency := time.Since(start)
	if s.observe != nil {
		s.observe(c.Request.Method, c.FullPath(), c.Writer.Status(), latency)
	}
	s.log.Info("request",
		zap.String("method", c.Request.Method),
		zap.String("route", c.FullPath()),
		zap.Int("status", c.Writer.Status()),
		zap.Int("bytes", c.Writer.Size()),
		zap.Duration("latency", latency))
}

func (s *Server) recover(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler { //nolint:errorlint // a sentinel panic value, never wrapped
				panic(r) // an export cut short on purpose: net/http drops the connection
			}
			s.log.Error("handler panicked", zap.Any("panic", r), zap.String("route", c.FullPath()))
			if !c.Writer.Written() {
				s.problem(c, http.StatusInternalServerError, "Internal Server Error", "", nil)
			}
			c.Abort()
		}
	}()
	c.Next()
}

// problem writes an RFC 9457 problem document.
func (s *Server) problem(c *gin.Context, status int, title, detail string, errs []ParamError) {
	body := gin.H{"type": "about:blank", "title": title, "status": status, "code": problemCode(status)}
	if detail != "" {
		body["detail"] = detail
	}
	if errs != nil {
		body["errors"] = errs
	}
	c.Header("Content-Type", "application/problem+json")
	c.Status(status)
	c.Render(-1, problemJSON{body})
}

// badRequest answers a request with invalid parameters, listing them all.
func (s *Server) badRequest(c *gin.Context, errs []ParamError) {
	s.problem(c, http.StatusBadRequest, "Invalid request parameters", "See errors for each invalid parameter.", errs)
}

// storeFailed answers a request the store could not serve.
func (s *Server) storeFailed(c *gin.Context, err error) {
	if errors.Is(err, context.Canceled) && c.Request.Context().Err() != nil {
		c.Abort() // the client went away
		return
	}
	s.log.Error("store query failed", zap.String("route", c.FullPath()), zap.Error(err))
	s.problem(c, http.StatusServiceUnavailable, "Service Unavailable", "The store did not answer; try again.", nil)
}

// routeParams are the query parameters the request's route accepts.
func routeParams(c *gin.Context) []string {
	return queryParams[c.Request.Method+" "+c.FullPath()]
}

func (s *Server) parser() *parser {
	return &parser{loc: s.loc, now: s.now(), cursor: s.cursor}
}

func (s *Server) listSessions(c *gin.Context) {
	p := s.parser()
	in := p.decodeQuery(c.Request.URL.Query(), routeParams(c))
	s.search(c, p, &in)
}

func (s *Server) searchSessions(c *gin.Context) {
	p := s.parser()
	p.decodeQuery(c.Request.URL.Query(), routeParams(c)) // none: the filter goes in the body
	if ct := c.GetHeader("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			s.problem(c, http.StatusUnsupportedMediaType, "Unsupported Media Type", "Send the filter as application/json.", nil)
			return
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.problem(c, http.StatusRequestEntityTooLarge, "Content Too Large", "A search body may have at most 1 MiB.", nil)
			return
		}
		c.Abort() // the client went away mid-body
		return
	}
	in := p.decodeJSON(body)
	s.search(c, p, &in)
}

// search serves a page of sessions for the list and the search routes.
func (s *Server) search(c *gin.Context, p *parser, in *request) {
	f, page := p.validate(in)
	if len(p.errs) > 0 {
		s.badRequest(c, p.sorted())
		return
	}
	f.Tenant = c.GetString(tenantKey)
	res, err := s.store.Search(c.Request.Context(), f, page)
	if err != nil {
		s.storeFailed(c, err)
		return
	}
	items := make([]sessionView, len(res.Items))
	for i := range res.Items {
		items[i] = viewListItem(&res.Items[i], p.now, &f)
	}
	var next *string
	if res.Next != nil {
		n := s.cursor.Encode(*res.Next)
		next = &n
	}
	c.JSON(http.StatusOK, gin.H{"items": items, "next_cursor": next, "total": res.Total, "total_exact": !res.TotalMore})
}

// detail reads the session of the path, answering the errors itself.
func (s *Server) detail(c *gin.Context) (report.Detail, bool) {
	p := s.parser()
	p.decodeQuery(c.Request.URL.Query(), routeParams(c))
	id := c.Param("id")
	if !event.IsUUID(id) {
		p.reject("id", ErrorCode(report.CodeInvalidSessionID), report.SessionIDMessage)
	}
	if len(p.errs) > 0 {
		s.badRequest(c, p.sorted())
		return report.Detail{}, false
	}
	d, err := s.store.Session(c.Request.Context(), c.GetString(tenantKey), id)
	if errors.Is(err, report.ErrNotFound) {
		s.problem(c, http.StatusNotFound, "Not Found", "No session with this id.", nil)
		return d, false
	}
	if err != nil {
		s.storeFailed(c, err)
		return d, false
	}
	return d, true
}

func (s *Server) getSession(c *gin.Context) {
	if d, ok := s.detail(c); ok {
		c.JSON(http.StatusOK, viewDetail(&d.Session, d.Events, s.now()))
	}
}

func (s *Server) facets(c *gin.Context) {
	p := s.parser()
	in := p.decodeQuery(c.Request.URL.Query(), routeParams(c))
	f, _ := p.validate(&in)
	if len(p.errs) > 0 {
		s.badRequest(c, p.sorted())
		return
	}
	res, err := s.store.Facets(c.Request.Context(), c.GetString(tenantKey), f.From, f.To)
	if err != nil {
		s.storeFailed(c, err)
		return
	}
	res.Tags, res.InfoKeys, res.Channels = nonNil(res.Tags), nonNil(res.InfoKeys), nonNil(res.Channels)
	c.JSON(http.StatusOK, res)
}
