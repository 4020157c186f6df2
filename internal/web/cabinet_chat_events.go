package web

import (
	"github.com/gin-gonic/gin"
)

// The shared chat's live updates are the chat view's event stream
// (internal/crm/chatview, live.go), of the signed-in user's whole
// workspace: the page fetches the list and the open dialog again with the
// user's own rights, so an event names no more than opaque contact ids.

// CloseStreams ends the chat view's event streams (the cabinet's and the
// CRM card pages'): a graceful shutdown waits for every request, and a
// stream does not end by itself for minutes.
func (s *Server) CloseStreams() {
	if s.d.Chat != nil {
		s.d.Chat.CloseStreams()
	}
}

// chatEvents is the stream of the signed-in user's workspace.
func (s *Server) chatEvents(c *gin.Context) {
	s.d.Chat.ServeStream(c.Writer, c.Request, cabinetOf(c).Workspace.ID, nil)
}
