// Package api is the report's HTTP API (Gin): it validates the report filters,
// scopes every query to the caller's tenant and renders sessions and
// conversations.
package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/chatreport/chatreport/internal/report"
)

// Store answers report queries.
type Store interface {
	Search(ctx context.Context, f report.Filter, p report.Page) (report.Result, error)
	Session(ctx context.Context, tenant, id string) (report.Detail, error)
}

// Config configures the API.
type Config struct {
	Keys *Keys
	// Location is the report time zone: dates without a time are days there.
	Location *time.Location
	// CursorKey signs page cursors; every instance must share it.
	CursorKey []byte
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Server serves the report API.
type Server struct {
	store  Store
	keys   *Keys
	loc    *time.Location
	cursor *report.CursorCodec
	now    func() time.Time
	log    *zap.Logger
	engine *gin.Engine
}

// New returns the API server.
func New(cfg Config, store Store, log *zap.Logger) (*Server, error) {
	if cfg.Keys == nil || cfg.Keys.Len() == 0 {
		return nil, errors.New("no API keys: set CHATREPORT_API_KEYS=tenant=key, or auth.api_keys or auth.api_key_hashes in the config file (up --demo makes one)")
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
	s := &Server{
		store: store, keys: cfg.Keys, loc: cfg.Location, cursor: report.NewCursorCodec(cfg.CursorKey),
		now: cfg.Now, log: log,
	}
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.Use(s.logRequests, s.recover)
	v1 := e.Group("/api/v1", s.authenticate)
	v1.GET("/sessions", s.listSessions)
	v1.GET("/sessions/:id", s.getSession)
	e.NoRoute(func(c *gin.Context) {
		s.problem(c, http.StatusNotFound, "Not Found", "No such route.", nil)
	})
	s.engine = e
	return s, nil
}

// ServeHTTP serves a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.engine.ServeHTTP(w, r) }

// logRequests logs the route, never the raw query: filters carry phone
// numbers and names.
func (s *Server) logRequests(c *gin.Context) {
	start := time.Now()
	c.Next()
	s.log.Info("request",
		zap.String("method", c.Request.Method),
		zap.String("route", c.FullPath()),
		zap.Int("status", c.Writer.Status()),
		zap.Duration("latency", time.Since(start)))
}

func (s *Server) recover(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("handler panicked", zap.Any("panic", r), zap.String("route", c.FullPath()))
			s.problem(c, http.StatusInternalServerError, "Internal Server Error", "", nil)
			c.Abort()
		}
	}()
	c.Next()
}

// problem writes an RFC 9457 problem document.
func (s *Server) problem(c *gin.Context, status int, title, detail string, errs []ParamError) {
	body := gin.H{"type": "about:blank", "title": title, "status": status}
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

// storeFailed answers a request the store could not serve.
func (s *Server) storeFailed(c *gin.Context, err error) {
	if errors.Is(err, context.Canceled) {
		c.Abort()
		return
	}
	s.log.Error("store query failed", zap.String("route", c.FullPath()), zap.Error(err))
	s.problem(c, http.StatusServiceUnavailable, "Service Unavailable", "The store did not answer; try again.", nil)
}

func (s *Server) listSessions(c *gin.Context) {
	p := parser{loc: s.loc, now: s.now(), cursor: s.cursor}
	q := p.parseQuery(c.Request.URL.Query())
	if len(p.errs) > 0 {
		s.problem(c, http.StatusBadRequest, "Invalid request parameters", "", p.errs)
		return
	}
	q.filter.Tenant = c.GetString(tenantKey)
	res, err := s.store.Search(c.Request.Context(), q.filter, q.page)
	if err != nil {
		s.storeFailed(c, err)
		return
	}
	now := s.now()
	items := make([]sessionView, len(res.Items))
	for i := range res.Items {
		items[i] = viewSession(&res.Items[i], now)
	}
	var next *string
	if res.Next != nil {
		n := s.cursor.Encode(*res.Next)
		next = &n
	}
	c.JSON(http.StatusOK, gin.H{"items": items, "next_cursor": next, "total": res.Total})
}

func (s *Server) getSession(c *gin.Context) {
	d, err := s.store.Session(c.Request.Context(), c.GetString(tenantKey), c.Param("id"))
	if errors.Is(err, report.ErrNotFound) {
		s.problem(c, http.StatusNotFound, "Not Found", "No session with this id.", nil)
		return
	}
	if err != nil {
		s.storeFailed(c, err)
		return
	}
	c.JSON(http.StatusOK, viewDetail(&d.Session, d.Events, s.now()))
}
