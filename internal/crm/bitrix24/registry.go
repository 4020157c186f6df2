package bitrix24

import (
	"net/http"

	"github.com/switchboard/switchboard/internal/crm"
)

// The Service is Bitrix24's entry in the CRM registry.
var _ crm.Integration = (*Service)(nil)

// Type is the store.Integration.Type of portals.
func (s *Service) Type() string { return Type }

// Mount adds the routes a portal and its users call. Install, events,
// OAuth callback and the pages authenticate their callers themselves
// (application token, signed form, OAuth state, page session); starting an
// OAuth installation needs the workspace's API token.
func (s *Service) Mount(r crm.Routes) {
	r.Public(http.MethodPost, "/bitrix24/install", s.ServeInstall)
	r.Public(http.MethodPost, "/bitrix24/events", s.ServeEvents)
	r.Public(http.MethodGet, "/bitrix24/oauth/callback", s.ServeOAuthCallback)
	r.Workspace(http.MethodGet, "/bitrix24/oauth/start", s.serveOAuthStart)
	r.Public(http.MethodPost, "/bitrix24/app", s.ServeApp)
	r.Public(http.MethodGet, "/bitrix24/app", s.ServeApp)
	r.Public(http.MethodPost, "/bitrix24/app/bind", s.ServeAppBind)
	r.Public(http.MethodPost, "/bitrix24/tab", s.ServeTab)
	r.Public(http.MethodGet, "/bitrix24/tab", s.ServeTab)
	r.Public(http.MethodPost, "/bitrix24/tab/send", s.ServeTabSend)
	r.Public(http.MethodPost, "/bitrix24/tab/log", s.ServeTabLog)
	r.Public(http.MethodGet, "/bitrix24/tab/events", s.ServeTabEvents)
	r.Public(http.MethodPost, "/bitrix24/robot", s.ServeRobot)
}

// serveOAuthStart sends an admin to the portal's consent page (the
// domain query parameter); the portal lands in workspaceID.
func (s *Service) serveOAuthStart(w http.ResponseWriter, r *http.Request, workspaceID string) error {
	u, err := s.OAuthStart(r.Context(), workspaceID, r.URL.Query().Get("domain"))
	if err != nil {
		return err
	}
	http.Redirect(w, r, u, http.StatusFound)
	return nil
}

// DisplayName is Bitrix24's product name, for pages that name no provider.
func (s *Service) DisplayName() string { return "Bitrix24" }

// RecordWords: Bitrix24 calls a binding's records as its entity is, a
// lead (лид) or a deal (сделка), in every language.
func (s *Service) RecordWords(_, entity string) string {
	if entity == "lead" {
		return "lead"
	}
	return "deal"
}
