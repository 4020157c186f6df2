package web

import (
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/nyaruka/phonenumbers"

	"github.com/switchboard/switchboard/internal/store"
)

// updateWorkspace changes a workspace's name, clock and how its people's
// phone numbers are read. A workspace token may change its own workspace.
func (s *Server) updateWorkspace(c *gin.Context) {
	var req struct {
		Name        *string `json:"name"`
		Timezone    *string `json:"timezone"`
		PhoneTrunk8 *bool   `json:"phone_trunk8"`
		PhoneRegion *string `json:"phone_region"`
	}
	if !decode(c, &req) {
		return
	}
	if req.Name != nil {
		*req.Name = strings.TrimSpace(*req.Name)
		if *req.Name == "" || utf8.RuneCountInString(*req.Name) > 200 || strings.ContainsFunc(*req.Name, isControl) {
			fail(c, http.StatusUnprocessableEntity, "name_invalid", "name must be 1 to 200 characters, without control characters")
			return
		}
	}
	if req.Timezone != nil {
		if _, err := time.LoadLocation(*req.Timezone); err != nil || *req.Timezone == "" || *req.Timezone == "Local" {
			fail(c, http.StatusUnprocessableEntity, "timezone_invalid", fmt.Sprintf("%q is not an IANA time zone (e.g. Europe/Moscow, Asia/Almaty)", *req.Timezone))
			return
		}
	}
	if req.PhoneRegion != nil {
		*req.PhoneRegion = strings.ToUpper(strings.TrimSpace(*req.PhoneRegion))
		if _, ok := phonenumbers.GetSupportedRegions()[*req.PhoneRegion]; !ok {
			fail(c, http.StatusUnprocessableEntity, "phone_region_invalid", fmt.Sprintf("phone_region is a two-letter country code (RU, KZ, UZ…), got %q", *req.PhoneRegion))
			return
		}
	}
	w, err := s.d.Store.UpdateWorkspace(c.Request.Context(), scopeOf(c), c.Param("id"), store.WorkspaceUpdate{
		Name: req.Name, Timezone: req.Timezone, PhoneTrunk8: req.PhoneTrunk8, PhoneRegion: req.PhoneRegion})
	if err != nil {
		s.failErr(c, err)
		return
	}
	c.JSON(http.StatusOK, w)
}

// isControl reports characters no name should carry: control characters
// and the bidirectional overrides that make text read differently than it
// is stored.
func isControl(r rune) bool {
	return r < 0x20 || (r >= 0x7f && r < 0xa0) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x200e || r == 0x200f
}
