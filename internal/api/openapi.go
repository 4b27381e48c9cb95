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
	if s.noParameters(c) {
		c.Data(http.StatusOK, "application/json", openAPIDocument)
	}
}
