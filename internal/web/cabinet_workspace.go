package web

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/nyaruka/phonenumbers"

	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/store"
	"github.com/switchboard/switchboard/internal/web/httperr"
)

// The cabinet's workspace settings: its name, the clock its pages and
// limits go by, how numbers its people type are read, and the dialog
// limit. The same settings as PATCH /api/v1/workspaces/{id}, checked by
// the same rules (validTimezone, validPhoneRegion, validDialogLimit).

// workspaceForm is the settings form as sent, shown again on a refusal.
type workspaceForm struct {
	Name, Timezone, PhoneRegion, DialogLimit string
	PhoneTrunk8                              bool
	// Zones and Regions are the choices offered, the current value among
	// them.
	Zones   []choice
	Regions []choice
}

// choice is an option of a select.
type choice struct{ Value, Label string }

// zoneChoices are the time zones offered: Russia's from west to east,
// then its neighbours' and a few more where sales teams write from.
var zoneChoices = []string{
	"Europe/Kaliningrad", "Europe/Moscow", "Europe/Samara", "Asia/Yekaterinburg", "Asia/Omsk",
	"Asia/Novosibirsk", "Asia/Krasnoyarsk", "Asia/Irkutsk", "Asia/Yakutsk", "Asia/Vladivostok",
	"Asia/Magadan", "Asia/Kamchatka", "Asia/Almaty", "Asia/Aqtobe", "Asia/Tashkent", "Asia/Bishkek",
	"Asia/Dushanbe", "Asia/Ashgabat", "Europe/Minsk", "Asia/Yerevan", "Asia/Baku", "Asia/Tbilisi",
	"Europe/Chisinau", "Europe/Istanbul", "Asia/Dubai", "Europe/Berlin", "Europe/London", "UTC",
}

// regionChoices are the countries offered for numbers typed without a
// country code.
var regionChoices = []string{"RU", "KZ", "UZ", "KG", "TJ", "TM", "BY", "AM", "AZ", "GE", "MD", "TR", "AE", "DE", "GB", "US"}

// mountCabinetWorkspace adds the settings page; admin is signed in,
// CSRF-checked and admin-only.
func (s *Server) mountCabinetWorkspace(admin *gin.RouterGroup) {
	admin.GET("/workspace", s.workspacePage)
	admin.POST("/workspace", s.saveWorkspacePage)
}

func (s *Server) workspacePage(c *gin.Context) {
	p := s.newPage(c, "workspace")
	if c.Query("done") == "saved" {
		p.Notice = p.T["ws_saved"]
	}
	w := cabinetOf(c).Workspace
	f := workspaceForm{Name: w.Name, Timezone: w.Timezone, PhoneRegion: w.PhoneRegion,
		DialogLimit: strconv.Itoa(w.DialogsPerHourLimit), PhoneTrunk8: w.PhoneTrunk8}
	s.renderWorkspace(c, http.StatusOK, p, f)
}

func (s *Server) renderWorkspace(c *gin.Context, status int, p *page, f workspaceForm) {
	now := time.Now()
	zones := zoneChoices
	if f.Timezone != "" && !slices.Contains(zones, f.Timezone) {
		zones = append([]string{f.Timezone}, zones...)
	}
	for _, z := range zones {
		label := z
		if loc, err := time.LoadLocation(z); err == nil {
			label = "UTC" + now.In(loc).Format("-07:00") + " · " + z
		}
		f.Zones = append(f.Zones, choice{z, label})
	}
	regions := regionChoices
	if f.PhoneRegion != "" && !slices.Contains(regions, f.PhoneRegion) {
		regions = append([]string{f.PhoneRegion}, regions...)
	}
	for _, r := range regions {
		label := r
		if name := p.T["country_"+r]; name != "" {
			label = r + " · " + name
		}
		f.Regions = append(f.Regions, choice{r, label})
	}
	p.WorkspaceForm = &f
	s.render(c, status, "workspace", p)
}

// saveWorkspacePage saves the form, or shows it again with what to fix.
func (s *Server) saveWorkspacePage(c *gin.Context) {
	cc := cabinetOf(c)
	f := workspaceForm{
		Name: c.PostForm("name"), Timezone: strings.TrimSpace(c.PostForm("timezone")),
		PhoneRegion: c.PostForm("phone_region"), DialogLimit: strings.TrimSpace(c.PostForm("dialogs_per_hour_limit")),
		PhoneTrunk8: c.PostForm("phone_trunk8") == "1",
	}
	u, err := workspaceFormUpdate(&f)
	limitChanged := err == nil && *u.DialogsPerHourLimit != cc.Workspace.DialogsPerHourLimit
	if err == nil {
		_, err = s.patchWorkspace(c.Request.Context(), store.Scope{WorkspaceID: cc.Workspace.ID}, cc.Workspace.ID, u, limitChanged)
	}
	if err != nil {
		if fault.As(err) == nil {
			s.pageErr(c, err)
			return
		}
		p := s.newPage(c, "workspace")
		p.Refused = problemOf(p.T, err)
		s.renderWorkspace(c, httperr.Status(fault.As(err).Kind), p, f)
		return
	}
	c.Redirect(http.StatusSeeOther, "/workspace?done=saved")
}

// workspaceFormUpdate checks the form (normalising it in place) and
// returns the change it asks for, every setting set.
func workspaceFormUpdate(f *workspaceForm) (store.WorkspaceUpdate, error) {
	name, err := validName(f.Name)
	if err != nil {
		fe := fault.As(err)
		return store.WorkspaceUpdate{}, &fault.Error{Kind: fe.Kind, Code: fe.Code, Message: fe.Message, Field: "name"}
	}
	f.Name = name
	if err := validTimezone(f.Timezone); err != nil {
		return store.WorkspaceUpdate{}, err
	}
	region, err := validPhoneRegion(f.PhoneRegion)
	if err != nil {
		return store.WorkspaceUpdate{}, err
	}
	f.PhoneRegion = region
	limit, err := strconv.ParseInt(f.DialogLimit, 10, 64)
	if err != nil {
		limit = -1
	}
	if err := validDialogLimit(limit, f.DialogLimit); err != nil {
		return store.WorkspaceUpdate{}, err
	}
	n := int(limit)
	return store.WorkspaceUpdate{Name: &f.Name, Timezone: &f.Timezone, PhoneTrunk8: &f.PhoneTrunk8,
		PhoneRegion: &f.PhoneRegion, DialogsPerHourLimit: &n}, nil
}

// validTimezone refuses what is not an IANA zone name (nor "Local",
// which would be this server's clock, not the workspace's).
func validTimezone(tz string) error {
	if len(tz) > maxTimezone || textProblem(tz, maxTimezone) != "" {
		return refusedField("timezone", "timezone_invalid", "timezone is an IANA time zone (e.g. Europe/Moscow, Asia/Almaty)")
	}
	if _, err := time.LoadLocation(tz); err != nil || tz == "" || tz == "Local" {
		return refusedField("timezone", "timezone_invalid", fmt.Sprintf("%q is not an IANA time zone (e.g. Europe/Moscow, Asia/Almaty)", tz))
	}
	return nil
}

// validPhoneRegion returns a country code for numbers typed without
// one, upper-cased, or refuses what phone numbers do not know.
func validPhoneRegion(r string) (string, error) {
	r = strings.ToUpper(strings.TrimSpace(r))
	if _, ok := phonenumbers.GetSupportedRegions()[r]; !ok {
		return "", refusedField("phone_region", "phone_region_invalid",
			fmt.Sprintf("phone_region is a two-letter country code (RU, KZ, UZ…), got %q", r))
	}
	return r, nil
}

// validDialogLimit refuses a dialog limit outside 0..MaxDialogsPerHour;
// as is the value as written, for the message.
func validDialogLimit(n int64, as string) error {
	if n < 0 || n > store.MaxDialogsPerHour {
		return refusedField("dialogs_per_hour_limit", "dialogs_per_hour_limit_invalid", fmt.Sprintf(
			"dialogs_per_hour_limit is a whole number of new dialogs per channel per hour, 0 (no limit) to %d; got %.40s",
			store.MaxDialogsPerHour, as))
	}
	return nil
}

// refusedField is an Invalid refusal of one field.
func refusedField(field, code, message string) error {
	return &fault.Error{Kind: fault.Invalid, Code: code, Message: message, Field: field}
}
