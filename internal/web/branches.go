package web

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/switchboard/switchboard/internal/routing"
)

// getRouting answers a channel's routing: mode "all" (every bound
// integration gets every customer) or "branch" with its branches.
func (s *Server) getRouting(c *gin.Context) {
	cfg, err := routing.BranchRouting(c.Request.Context(), s.d.Store, scopeOf(c), c.Param("id"))
	if err != nil {
		s.failErr(c, err)
		return
	}
	reply(c, http.StatusOK, cfg)
}

// putRouting replaces a channel's routing; a refused one changes nothing.
func (s *Server) putRouting(c *gin.Context) {
	var req routing.BranchConfig
	if !decode(c, &req) {
		return
	}
	cfg, err := routing.PutBranchRouting(c.Request.Context(), s.d.Store, scopeOf(c), c.Param("id"), req)
	if err != nil {
		s.failErr(c, err)
		return
	}
	reply(c, http.StatusOK, cfg)
}

// getCustomerBranch answers which branch a customer of a branch-mode
// channel is in ("" while they choose).
func (s *Server) getCustomerBranch(c *gin.Context) {
	v, err := routing.GetCustomerBranch(c.Request.Context(), s.d.Store, scopeOf(c), c.Param("id"), c.Param("customer_id"))
	if err != nil {
		s.failErr(c, err)
		return
	}
	reply(c, http.StatusOK, v)
}

// moveCustomerBranch moves a customer to another branch of the channel.
func (s *Server) moveCustomerBranch(c *gin.Context) {
	var req struct {
		IntegrationID string `json:"integration_id"`
	}
	if !decode(c, &req) {
		return
	}
	v, err := routing.MoveCustomer(c.Request.Context(), s.d.Store, scopeOf(c), c.Param("id"), c.Param("customer_id"), req.IntegrationID)
	if err != nil {
		s.failErr(c, err)
		return
	}
	reply(c, http.StatusOK, v)
}
