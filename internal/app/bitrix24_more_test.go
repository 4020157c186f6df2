package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/app/apptest"
	"github.com/switchboard/switchboard/internal/sandbox/b24sim"
	"github.com/switchboard/switchboard/internal/sandbox/metasim"
)

// The install page variant (the admin opens the app in the portal).
func TestBitrix24InstallPage(t *testing.T) {
	e := apptest.Start(t, b24Opts)
	_, refresh := e.B24.InstallTokens(apptest.B24MemberID)
	form := url.Values{"AUTH_ID": {"a"}, "AUTH_EXPIRES": {"3600"}, "REFRESH_ID": {refresh}, "member_id": {apptest.B24MemberID},
		"APPLICATION_TOKEN": {apptest.B24AppToken}, "PLACEMENT": {"DEFAULT"}, "PLACEMENT_OPTIONS": {"{}"}, "status": {"P"}}
	resp, err := http.PostForm(e.URL+"/bitrix24/install?DOMAIN="+apptest.B24Domain+"&PROTOCOL=1&LANG=en&APP_SID=s", form)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "BX24.installFinish()") || !strings.Contains(string(body), "Switchboard is installed") {
		t.Fatalf("install page: %d\n%s", resp.StatusCode, body)
	}
	// Framed by the portal that installed it (its own origin), not a list.
	if csp := resp.Header.Get("Content-Security-Policy"); csp != "frame-ancestors "+e.B24URL {
		t.Fatalf("the page cannot be framed by its portal: %q", csp)
	}
	_, list := e.Do("GET", "/api/v1/integrations", nil)
	if n := len(list["data"].([]any)); n != 1 {
		t.Fatalf("%d integrations after the install page", n)
	}
}

// Files both ways, and the operator's signature when the line asks for it.
func TestBitrix24FilesAndSignature(t *testing.T) {
	apptest.Each(t, b24Opts, func(t *testing.T, e *apptest.Env) {
		integ, ws := e.InstallBitrix24()
		ch := createWAIn(t, e, ws)
		st, b := e.Do("PUT", "/api/v1/integrations/"+integ+"/channels/"+ch, map[string]any{"mode": "openlines", "line_id": "1", "operator_name": true})
		if st != 200 {
			t.Fatal("bind")
		}
		// What was asked for is shown back, by PUT and by GET.
		_, integView := e.Do("GET", "/api/v1/integrations/"+integ, nil)
		for _, v := range []any{b["settings"], integView["bindings"].([]any)[0].(map[string]any)["settings"]} {
			if set, _ := v.(map[string]any); set["operator_name"] != true {
				t.Fatalf("operator_name not shown: PUT %v, GET %v", b, integView)
			}
		}
		e.Eventually("line active", func() bool { return e.Portal.ConnectorStatus("switchboard_whatsapp", 1).Active })
		photo := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{7}, 2048)...)
		if _, _, err := e.Sim.SendWhatsAppImage(context.Background(), apptest.PhoneNumberID, customer, "Анна Смирнова", "image/png", photo, "Чек"); err != nil {
			t.Fatal(err)
		}
		var in b24sim.Message
		e.Eventually("photo in the line", func() bool {
			ms := inboundOnLine(e, 1)
			if len(ms) == 1 && len(ms[0].Files) == 1 {
				in = ms[0]
				return true
			}
			return false
		})
		if !strings.Contains(in.Text, "Чек") || !strings.Contains(in.Files[0].URL, "/media/") {
			t.Fatalf("photo message %+v", in)
		}
		// Bitrix24 fetches the file by its signed link.
		resp, err := http.Get(in.Files[0].URL)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !bytes.Equal(got, photo) {
			t.Fatalf("the line's file link gives %d bytes, want the photo", len(got))
		}

		// The operator answers with a file; it reaches the customer as a document.
		_, err = e.B24.OperatorReply(context.Background(), apptest.B24MemberID, "1", in.ChatID, "Счёт во вложении",
			b24sim.File{Name: "invoice.pdf", Type: "file", Mime: "application/pdf", Content: []byte("%PDF-1.4 счёт")})
		if err != nil {
			t.Fatal(err)
		}
		path := "/v25.0/" + apptest.PhoneNumberID + "/messages"
		e.Eventually("document sent", func() bool { return len(graphSends(e.Sim, path)) == 1 })
		var sent struct {
			Type     string
			Document struct{ ID, Caption, Filename string }
		}
		json.Unmarshal(graphSends(e.Sim, path)[0].Body, &sent)
		if sent.Type != "document" || sent.Document.ID == "" || sent.Document.Filename != "invoice.pdf" {
			t.Fatalf("operator's file: %+v", sent)
		}
		// With the line's signature setting, the caption names the operator.
		if !strings.HasSuffix(sent.Document.Caption, ": Счёт во вложении") || strings.Contains(sent.Document.Caption, "[b]") {
			t.Fatalf("caption %q: want the operator's name, then the text", sent.Document.Caption)
		}
	})
}

// Two portals in two workspaces: an operator of portal B cannot write to a
// customer of portal A, even naming A's chat.
func TestBitrix24NoCrossPortalLeak(t *testing.T) {
	e := apptest.Start(t, b24Opts)
	integA, wsA := e.InstallBitrix24()
	chA := createWAIn(t, e, wsA)
	bindLine(t, e, integA, chA, "1")
	e.Sim.SendWhatsAppText(context.Background(), apptest.PhoneNumberID, customer, "Анна", "Привет")
	e.Eventually("A's line has the message", func() bool { return len(inboundOnLine(e, 1)) == 1 })
	chatA := inboundOnLine(e, 1)[0].ChatID

	const memberB = "b00000000000000000000000000000bb"
	portalB := e.B24.AddPortal(b24sim.PortalOptions{MemberID: memberB, Domain: "other.bitrix24.kz", ApplicationToken: "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"})
	if st, err := e.B24.PostInstallEvent(context.Background(), memberB, e.URL+"/bitrix24/install", "ru"); err != nil || st != 200 {
		t.Fatalf("install B: %d %v", st, err)
	}
	e.Eventually("B set up", func() bool { return len(portalB.Events()) >= 6 })
	_, list := e.Do("GET", "/api/v1/integrations", nil)
	var wsB string
	for _, v := range list["data"].([]any) {
		if m := v.(map[string]any); m["id"] != integA {
			wsB = m["workspace_id"].(string)
		}
	}
	if wsB == "" || wsB == wsA {
		t.Fatalf("portal B did not get a workspace of its own: %v", list)
	}
	// B has a WhatsApp channel of its own on its line 1, so B's event gets
	// past the line lookup and only the workspace boundary stands between
	// B's operator and A's customer.
	_, bl0 := e.Do("GET", "/api/v1/integrations", nil)
	var integB0 string
	for _, v := range bl0["data"].([]any) {
		if m := v.(map[string]any); m["id"] != integA {
			integB0 = m["id"].(string)
		}
	}
	e.Sim.AddWhatsAppNumber("200000000000001", "200000000000002", "+7 916 000 00 01", "EAAG-b")
	st, chB := e.Do("POST", "/api/v1/channels", map[string]any{"type": "whatsapp", "name": "B", "workspace_id": wsB,
		"phone_number_id": "200000000000001", "waba_id": "200000000000002", "access_token": "EAAG-b"})
	if st != http.StatusCreated {
		t.Fatalf("B's channel: %d %v", st, chB)
	}
	if st, body := e.Do("PUT", "/api/v1/integrations/"+integB0+"/channels/"+chB["id"].(string), map[string]any{"mode": "openlines", "line_id": "1"}); st != 200 {
		t.Fatalf("bind B: %d %v", st, body)
	}
	// B's operator event names A's chat (the contact id) on B's line 1.
	err := e.B24.PostEvent(context.Background(), memberB, "ONIMCONNECTORMESSAGEADD", url.Values{
		"data[CONNECTOR]": {"switchboard_whatsapp"}, "data[LINE]": {"1"},
		"data[MESSAGES][0][im][chat_id]": {"77"}, "data[MESSAGES][0][im][message_id]": {"991"},
		"data[MESSAGES][0][message][user_id]": {"1"}, "data[MESSAGES][0][message][text]": {"чужой портал"},
		"data[MESSAGES][0][chat][id]": {chatA},
	})
	if err != nil {
		t.Fatal(err)
	}
	// B may not bind A's channel either.
	_, bl := e.Do("GET", "/api/v1/integrations", nil)
	var integB string
	for _, v := range bl["data"].([]any) {
		if m := v.(map[string]any); m["id"] != integA {
			integB = m["id"].(string)
		}
	}
	st, body := e.Do("PUT", "/api/v1/integrations/"+integB+"/channels/"+chA, map[string]any{"mode": "openlines", "line_id": "1"})
	if st != http.StatusNotFound {
		t.Fatalf("portal B bound A's channel: %d %v", st, body)
	}
	e.App.Queue.Notify()
	var pending int64
	e.Eventually("B's event handled", func() bool {
		e.App.DB.Gorm.Table("jobs").Where("kind = ?", "bitrix24.event").Count(&pending)
		return pending == 0
	})
	if n := len(graphSends(e.Sim, "/v25.0/"+apptest.PhoneNumberID+"/messages")); n != 0 {
		t.Fatalf("portal B's operator reached portal A's customer (%d sends)", n)
	}
}

// An Instagram channel on a second line of the same portal: the customer
// arrives with the name and picture from their profile.
func TestBitrix24InstagramOnSecondLine(t *testing.T) {
	e := apptest.Start(t, b24Opts)
	integ, ws := e.InstallBitrix24()
	wa := createWAIn(t, e, ws)
	bindLine(t, e, integ, wa, "1")
	st, ig := e.Do("POST", "/api/v1/channels", map[string]any{"type": "instagram", "name": "Instagram", "workspace_id": ws,
		"ig_user_id": apptest.IGUserID, "access_token": apptest.IGToken})
	if st != http.StatusCreated {
		t.Fatalf("ig channel: %d %v", st, ig)
	}
	if st, body := e.Do("PUT", "/api/v1/integrations/"+integ+"/channels/"+ig["id"].(string), map[string]any{"mode": "openlines", "line_id": "2"}); st != 200 {
		t.Fatalf("bind ig: %d %v", st, body)
	}
	e.Eventually("line 2 active for Instagram", func() bool { return e.Portal.ConnectorStatus("switchboard_instagram", 2).Active })
	igsid := "1133627508796544"
	e.Sim.SetInstagramProfile(igsid, metasimProfile("Мария Иванова", "maria.iv", "https://cdn.example/p/maria.jpg"))
	if _, err := e.Sim.SendInstagramText(context.Background(), apptest.IGUserID, igsid, "Есть размер M?"); err != nil {
		t.Fatal(err)
	}
	e.Eventually("Instagram message on line 2", func() bool { return len(inboundOnLine(e, 2)) == 1 })
	m := inboundOnLine(e, 2)[0]
	if m.User.Name != "Мария" || m.User.LastName != "Иванова" || m.User.PictureURL != "https://cdn.example/p/maria.jpg" ||
		m.User.URL != "https://instagram.com/maria.iv" || m.Connector != "switchboard_instagram" {
		t.Fatalf("line 2 got %+v", m)
	}
	if n := len(inboundOnLine(e, 1)); n != 0 {
		t.Fatalf("the WhatsApp line got %d Instagram messages", n)
	}
}

func metasimProfile(name, username, pic string) metasim.InstagramProfile {
	return metasim.InstagramProfile{Name: name, Username: username, ProfilePic: pic}
}
