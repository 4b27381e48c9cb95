package api

import (
	_ "embed"
	"net/http"

	"github.com/gin-gonic/gin"
)

// openAPIDocument describes every route, parameter and schema of the API;
// TestOpenAPIMatchesRoutes keeps it in step with the routes and the parser.
//
//go:embed openapi.json
var openAPIDocument []byte

func (s *Server) openAPI(c *gin.Context) {
	p := s.parser()
	p.decodeQuery(c.Request.URL.Query(), routeParams(c))
	if len(p.errs) > 0 {
		s.badRequest(c, p.sorted())
		return
	}
	c.Data(http.StatusOK, "application/json", openAPIDocument)
}
