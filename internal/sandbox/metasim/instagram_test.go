package metasim

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func igText(igsid, messagingType, tag, text string) map[string]any {
	req := map[string]any{"recipient": map[string]any{"id": igsid}, "message": map[string]any{"text": text}}
	if messagingType != "" {
		req["messaging_type"] = messagingType
	}
	if tag != "" {
		req["tag"] = tag
	}
	return req
}

func TestInstagramWindow(t *testing.T) {
	tests := []struct {
		name       string
		inboundAgo time.Duration // negative: never wrote
		msgType    string
		tag        string
		wantStatus int
		wantCode   int
		wantSub    int
	}{
		{"1h RESPONSE", time.Hour, "RESPONSE", "", 200, 0, 0},
		{"23h UPDATE", 23 * time.Hour, "UPDATE", "", 200, 0, 0},
		{"no messaging_type", time.Hour, "", "", 200, 0, 0},
		{"25h RESPONSE", 25 * time.Hour, "RESPONSE", "", 400, 10, 2534022},
		{"25h HUMAN_AGENT", 25 * time.Hour, "MESSAGE_TAG", "HUMAN_AGENT", 200, 0, 0},
		{"6d23h HUMAN_AGENT", 7*24*time.Hour - time.Hour, "MESSAGE_TAG", "HUMAN_AGENT", 200, 0, 0},
		{"8d HUMAN_AGENT", 8 * 24 * time.Hour, "MESSAGE_TAG", "HUMAN_AGENT", 400, 10, 2534022},
		{"other tag", time.Hour, "MESSAGE_TAG", "CONFIRMED_EVENT_UPDATE", 400, 100, 0},
		{"bad messaging_type", time.Hour, "PROMO", "", 400, 100, 0},
		{"never wrote", -1, "RESPONSE", "", 400, 100, 2018001},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newSim(t, Options{})
			if tc.inboundAgo >= 0 {
				if _, err := env.sim.SendInstagramText(context.Background(), testIGUser, testIGSID, "Привет"); err != nil {
					t.Fatal(err)
				}
				env.clock.Advance(tc.inboundAgo)
			}
			status, body := env.call(t, http.MethodPost, "/v25.0/me/messages", testIGToken, igText(testIGSID, tc.msgType, tc.tag, "Ответ"))
			if status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", status, tc.wantStatus, body)
			}
			if status == 200 {
				assertSameShape(t, body, "ig-send-response.json")
				return
			}
			e := decodeError(t, body)
			if e.Error.Code != tc.wantCode || e.Error.Subcode != tc.wantSub {
				t.Errorf("code %d/%d, want %d/%d: %s", e.Error.Code, e.Error.Subcode, tc.wantCode, tc.wantSub, body)
			}
			if e.Error.ErrorData != nil {
				t.Errorf("Instagram errors carry no error_data: %s", body)
			}
			if tc.wantCode == 10 {
				assertSameShape(t, body, "ig-error-outside-window.json")
			}
		})
	}
}

func TestInstagramSendPathsAndValidation(t *testing.T) {
	env := newSim(t, Options{})
	if _, err := env.sim.SendInstagramText(context.Background(), testIGUser, testIGSID, "hi"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ig-send-text-request.json", "ig-send-human-agent-request.json", "ig-send-image-request.json"} {
		if status, body := env.call(t, http.MethodPost, "/v25.0/"+testIGUser+"/messages?access_token="+testIGToken, "", fixture(t, name)); status != 200 {
			t.Errorf("%s via query token: %d %s", name, status, body)
		}
	}
	status, body := env.call(t, http.MethodPost, "/v25.0/me/messages", testIGToken, map[string]any{"recipient": map[string]any{"id": testIGSID}, "sender_action": "typing_on"})
	if status != 200 || string(body) != `{"recipient_id":"`+testIGSID+`"}` {
		t.Errorf("sender_action: %d %s", status, body)
	}
	bad := []map[string]any{
		{"message": map[string]any{"text": "x"}},
		{"recipient": map[string]any{"id": testIGSID}},
		{"recipient": map[string]any{"id": testIGSID}, "message": map[string]any{"text": strings.Repeat("x", 1001)}},
		{"recipient": map[string]any{"id": testIGSID}, "message": map[string]any{"attachment": map[string]any{"type": "image", "payload": map[string]any{"url": "not a url"}}}},
		{"recipient": map[string]any{"id": testIGSID}, "sender_action": "dance"},
	}
	for i, b := range bad {
		status, body := env.call(t, http.MethodPost, "/v25.0/me/messages", testIGToken, b)
		if status != 400 || decodeError(t, body).Error.Code != 100 {
			t.Errorf("bad request %d: %d %s", i, status, body)
		}
	}
	if status, body := env.call(t, http.MethodPost, "/v25.0/me/messages", testWAToken, igText(testIGSID, "RESPONSE", "", "x")); status != 400 || decodeError(t, body).Error.Subcode != 33 {
		t.Errorf("WhatsApp token on /me/messages: %d %s", status, body)
	}
	env.sim.ExpireToken(testIGToken)
	if status, body := env.call(t, http.MethodPost, "/v25.0/me/messages", testIGToken, igText(testIGSID, "RESPONSE", "", "x")); status != 401 || decodeError(t, body).Error.Subcode != 463 {
		t.Errorf("expired IG token: %d %s", status, body)
	}
}

func TestInstagramEchoAndRead(t *testing.T) {
	env := newSim(t, Options{AutoStatuses: true, StatusDelay: time.Millisecond})
	if _, err := env.sim.SendInstagramText(context.Background(), testIGUser, testIGSID, "Привет! Есть размер M?"); err != nil {
		t.Fatal(err)
	}
	in := env.gw.received()
	if len(in) != 1 {
		t.Fatalf("%d deliveries", len(in))
	}
	assertSameShape(t, in[0], "ig-inbound-text.json")
	env.gw.reset()

	status, body := env.call(t, http.MethodPost, "/v25.0/me/messages", testIGToken, igText(testIGSID, "RESPONSE", "", "Да, размер M есть в наличии."))
	if status != 200 {
		t.Fatalf("send: %d %s", status, body)
	}
	var resp struct {
		RecipientID string `json:"recipient_id"`
		MessageID   string `json:"message_id"`
	}
	json.Unmarshal(body, &resp)
	env.sim.Wait()
	got := env.gw.received()
	if len(got) != 2 {
		t.Fatalf("%d deliveries, want echo + read", len(got))
	}
	assertSameShape(t, got[0], "ig-echo.json")
	assertSameShape(t, got[1], "ig-read.json")

	var echo, read igWebhook
	json.Unmarshal(got[0], &echo)
	json.Unmarshal(got[1], &read)
	e := echo.Entry[0].Messaging[0]
	if !e.Message.IsEcho || e.Message.MID != resp.MessageID || e.Sender.ID != testIGUser || e.Recipient.ID != testIGSID || e.Message.Text != "Да, размер M есть в наличии." {
		t.Errorf("echo %+v %+v", e, e.Message)
	}
	if e.Timestamp != env.clock.Now().UnixMilli() || echo.Entry[0].ID != testIGUser {
		t.Errorf("echo timestamp %d / entry %s", e.Timestamp, echo.Entry[0].ID)
	}
	r := read.Entry[0].Messaging[0]
	if r.Read == nil || r.Read.MID != resp.MessageID || r.Sender.ID != testIGSID {
		t.Errorf("read %+v", r)
	}
}

func TestInstagramProfile(t *testing.T) {
	env := newSim(t, Options{})
	path := "/v25.0/" + testIGSID + "?fields=name,username,profile_pic,follower_count,is_user_follow_business,is_business_follow_user,is_verified_user"
	if status, body := env.call(t, http.MethodGet, path, testIGToken, nil); status != 400 || decodeError(t, body).Error.Subcode != 33 {
		t.Errorf("unknown user: %d %s", status, body)
	}
	env.sim.SetInstagramProfile(testIGSID, InstagramProfile{Name: "Айгерим", Username: "aigerim.shop.fan", ProfilePic: "https://scontent.example/p.jpg", FollowerCount: 312, IsUserFollowBusiness: true})
	if status, body := env.call(t, http.MethodGet, path, testIGToken, nil); status != 400 || decodeError(t, body).Error.Code != 230 {
		t.Errorf("before consent: %d %s", status, body)
	}
	env.sim.SendInstagramText(context.Background(), testIGUser, testIGSID, "hi")
	status, body := env.call(t, http.MethodGet, path, testIGToken, nil)
	if status != 200 {
		t.Fatalf("profile: %d %s", status, body)
	}
	assertSameShape(t, body, "ig-user-profile-response.json")
	if !strings.Contains(string(body), `"name":"Айгерим"`) || !strings.Contains(string(body), `"follower_count":312`) {
		t.Errorf("profile %s", body)
	}
	status, body = env.call(t, http.MethodGet, "/v25.0/"+testIGSID+"?fields=username", testIGToken, nil)
	if status != 200 || string(body) != `{"username":"aigerim.shop.fan","id":"`+testIGSID+`"}` {
		t.Errorf("fields filter: %d %s", status, body)
	}
	if status, _ := env.call(t, http.MethodGet, "/v25.0/"+testIGSID+"?fields=email", testIGToken, nil); status != 400 {
		t.Errorf("unknown field: %d", status)
	}
}
