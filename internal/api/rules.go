package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/chatreport/chatreport/internal/report"
	"github.com/chatreport/chatreport/internal/session"
)

// rulesView is GET /filter/rules: the limits and formats of a filter, so
// that a client (the screen) checks a value before sending it without
// repeating the rules. The API still checks everything.
type rulesView struct {
	MaxIntervalDays int             `json:"max_interval_days"`
	Limits          limitsView      `json:"limits"`
	Operations      []operationView `json:"operations"`
	// Outcomes are the attendance outcomes the outcome filter takes.
	Outcomes []string     `json:"outcomes"`
	Patterns patternsView `json:"patterns"`
}

type limitsView struct {
	Tags         int `json:"tags"`
	TagBytes     int `json:"tag_bytes"`
	Channels     int `json:"channels"`
	Conditions   int `json:"conditions"`
	ValueBytes   int `json:"value_bytes"`
	ContactBytes int `json:"contact_bytes"`
	QBytes       int `json:"q_bytes"`
	Names        int `json:"names"`      // agents, or queues
	NameBytes    int `json:"name_bytes"` // of an agent id or a queue
	Page         int `json:"page"`
	DefaultPage  int `json:"default_page"`
}

type operationView struct {
	Op         report.Op `json:"op"`
	TakesValue bool      `json:"takes_value"`
}

type patternsView struct {
	Session  string `json:"session"`
	Protocol string `json:"protocol"`
	InfoKey  string `json:"info_key"`
	Channel  string `json:"channel"`
}

// filterRules is the answer of GET /filter/rules, the same for every tenant.
var filterRules = func() rulesView {
	v := rulesView{
		MaxIntervalDays: report.MaxIntervalDays,
		Limits: limitsView{
			Tags: report.MaxTags, TagBytes: report.MaxTagBytes, Channels: report.MaxChannels,
			Conditions: report.MaxConditions, ValueBytes: report.MaxValueBytes, ContactBytes: report.MaxContactBytes,
			QBytes: report.MaxQueryBytes, Names: report.MaxNames, NameBytes: report.MaxNameBytes,
			Page: report.MaxPageLimit, DefaultPage: report.DefaultPageLimit,
		},
		Outcomes: session.Outcomes,
		Patterns: patternsView{
			Session: report.SessionIDPattern, Protocol: report.ProtocolPattern,
			InfoKey: report.InfoKeyPattern, Channel: report.ChannelPattern,
		},
	}
	for _, op := range report.Ops {
		v.Operations = append(v.Operations, operationView{Op: op, TakesValue: op.TakesValue()})
	}
	return v
}()

func (s *Server) rules(c *gin.Context) {
	if s.noParameters(c) {
		c.JSON(http.StatusOK, filterRules)
	}
}

// noParameters answers a request to a route without query parameters that
// has some with a 400, and reports whether it had none.
func (s *Server) noParameters(c *gin.Context) bool {
	p := s.parser()
	p.decodeQuery(c.Request.URL.Query(), routeParams(c))
	if len(p.errs) > 0 {
		s.badRequest(c, p.sorted())
		return false
	}
	return true
}
