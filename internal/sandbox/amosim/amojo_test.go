package amosim

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func (e *env) amojo(method, path, date, md5, sig string, body []byte) (int, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(body))
	req.Header.Set("Date", date)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-MD5", md5)
	req.Header.Set("X-Signature", sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

const fxScope = fxChannelID + "_2f4b7c1e-6a3d-4e8f-9b21-5c0d7e8f9a10"
const fxDate = "Thu, 01 Jan 2026 12:00:05 +0000"

// The fixture's signed requests, sent byte for byte with their headers,
// are accepted; the same with one byte or header changed is refused.
func TestAmojoFixtureVectors(t *testing.T) {
	e := newEnv(t, Options{})
	e.clk.Add(5 * time.Second)
	connect := fixture(t, "amojo_connect_request.json")
	if got := AmojoContentMD5(connect); got != "d202a7834c30157552ae8edac3705568" {
		t.Errorf("connect MD5 %s", got)
	}
	if got := AmojoSignature(fxChannelSec, "POST", "d202a7834c30157552ae8edac3705568", "application/json", fxDate, "/v2/origin/custom/"+fxChannelID+"/connect"); got != "c4de418de5c1ac63e8ece7e1094609a46c8229f7" {
		t.Errorf("connect signature %s", got)
	}
	// Not connected yet: the scope is unknown.
	msg := fixture(t, "amojo_new_message_request.json")
	if st, _ := e.amojo("POST", "/v2/origin/custom/"+fxScope, fxDate, "3952db6d3603c8040e019887b59dc2f0", "ce39fe71ef5219adcf1c9c45b8a66e3a4ce63cce", msg); st != 404 {
		t.Errorf("message before connect: %d", st)
	}
	// A wrong signature is refused with 403 and connects nothing.
	if st, _ := e.amojo("POST", "/v2/origin/custom/"+fxChannelID+"/connect", fxDate, "d202a7834c30157552ae8edac3705568", "c4de418de5c1ac63e8ece7e1094609a46c8229f8", connect); st != 403 {
		t.Errorf("bad signature: %d", st)
	}
	if _, ok := e.sim.ScopeID(fxAccount); ok {
		t.Fatal("refused connect connected")
	}
	st, b := e.amojo("POST", "/v2/origin/custom/"+fxChannelID+"/connect", fxDate, "d202a7834c30157552ae8edac3705568", "c4de418de5c1ac63e8ece7e1094609a46c8229f7", connect)
	if st != 200 {
		t.Fatalf("connect: %d %s", st, b)
	}
	jsonEqual(t, "connect", b, fixture(t, "amojo_connect_response.json"))

	// Body changed after signing: MD5 mismatch.
	tampered := bytes.Replace(msg, []byte("Алматы"), []byte("Астану"), 1)
	if st, _ := e.amojo("POST", "/v2/origin/custom/"+fxScope, fxDate, "3952db6d3603c8040e019887b59dc2f0", "ce39fe71ef5219adcf1c9c45b8a66e3a4ce63cce", tampered); st != 403 {
		t.Errorf("tampered body: %d", st)
	}
	st, b = e.amojo("POST", "/v2/origin/custom/"+fxScope, fxDate, "3952db6d3603c8040e019887b59dc2f0", "ce39fe71ef5219adcf1c9c45b8a66e3a4ce63cce", msg)
	if st != 200 {
		t.Fatalf("new message: %d %s", st, b)
	}
	var got, want map[string]map[string]any
	json.Unmarshal(b, &got)
	json.Unmarshal(fixture(t, "amojo_new_message_response.json"), &want)
	delete(got["new_message"], "msgid")
	delete(want["new_message"], "msgid")
	if !equalJSON(got, want) {
		t.Errorf("new message answer %v, want %v", got, want)
	}
	chats := e.sim.Chats(fxAccount)
	if len(chats) != 1 || chats[0].Phone != "+79161234567" || chats[0].Name != "Мария Клиентова" || len(chats[0].Messages) != 1 {
		t.Fatalf("chats %+v", chats)
	}
	// The GET vector (history, MD5 of the empty body) passes the signature
	// check: 404 for the fixture's chat id, which is not one of ours, not 403.
	if st, b := e.amojo("GET", "/v2/origin/custom/"+fxScope+"/chats/8e4d4baa-9e6c-4a88-838a-5f62be227bdc/history", fxDate, "d41d8cd98f00b204e9800998ecf8427e", "2a48f013ba964dcd840cc13ec3e2724a79720a82", nil); st != 404 {
		t.Errorf("history vector: %d %s", st, b)
	}
	// Out of the 15-minute window.
	e.clk.Add(16 * time.Minute)
	if st, _ := e.amojo("POST", "/v2/origin/custom/"+fxScope, fxDate, "3952db6d3603c8040e019887b59dc2f0", "ce39fe71ef5219adcf1c9c45b8a66e3a4ce63cce", msg); st != 403 {
		t.Errorf("stale Date: %d", st)
	}
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// A manager's reply posts the v2 hook signed over the raw body, once.
func TestManagerReplyHook(t *testing.T) {
	var got []byte
	var sig string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		sig = r.Header.Get("X-Signature")
		if !strings.HasSuffix(r.URL.Path, "/"+fxScope) {
			t.Errorf("hook path %s", r.URL.Path)
		}
	}))
	defer hook.Close()
	e := newEnv(t, Options{HookURL: hook.URL + "/amojo/hook/:scope_id"})
	e.clk.Add(5 * time.Second)
	e.amojo("POST", "/v2/origin/custom/"+fxChannelID+"/connect", fxDate, "d202a7834c30157552ae8edac3705568", "c4de418de5c1ac63e8ece7e1094609a46c8229f7", fixture(t, "amojo_connect_request.json"))
	e.amojo("POST", "/v2/origin/custom/"+fxScope, fxDate, "3952db6d3603c8040e019887b59dc2f0", "ce39fe71ef5219adcf1c9c45b8a66e3a4ce63cce", fixture(t, "amojo_new_message_request.json"))
	id, d, err := e.sim.ManagerReply(context.Background(), fxAccount, "wa-79161234567", 9000001, "Да, доставка 2-3 дня.")
	if err != nil || d.Status != 200 {
		t.Fatalf("reply: %v %+v", err, d)
	}
	if sig != AmojoHookSignature(fxChannelSec, got) {
		t.Error("hook signature is not HMAC-SHA1 of the body")
	}
	var h struct {
		AccountID string `json:"account_id"`
		Message   struct {
			Receiver     struct{ Phone, ClientID string } `json:"receiver"`
			Conversation struct {
				ClientID string `json:"client_id"`
			} `json:"conversation"`
			Message struct{ ID, Text string } `json:"message"`
		} `json:"message"`
	}
	json.Unmarshal(got, &h)
	if h.Message.Message.ID != id || h.Message.Conversation.ClientID != "wa-79161234567" || h.Message.Receiver.Phone != "+79161234567" {
		t.Errorf("hook %s", got)
	}
	// The fixture's hook vector, for the shape: same keys at every level.
	var fx, ours map[string]any
	json.Unmarshal(fixture(t, "amojo_outgoing_webhook_v2.json"), &fx)
	json.Unmarshal(got, &ours)
	if !sameKeys(fx, ours) {
		t.Errorf("hook keys differ from the fixture:\n%s", got)
	}
}

// sameKeys reports whether b has every key a has, recursively (a's source
// block is optional: amojo sends it only for chats with a source).
func sameKeys(a, b map[string]any) bool {
	for k, v := range a {
		if k == "source" {
			continue
		}
		bv, ok := b[k]
		if !ok {
			return false
		}
		if am, ok := v.(map[string]any); ok {
			bm, ok := bv.(map[string]any)
			if !ok || !sameKeys(am, bm) {
				return false
			}
		}
	}
	return true
}
