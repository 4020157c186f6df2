package metasim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// humanAgentWindow is how long after the customer's last message a
// MESSAGE_TAG + HUMAN_AGENT reply is still allowed (contract §3.3).
const humanAgentWindow = 7 * 24 * time.Hour

// InstagramProfile is what GET /{IGSID} returns for a customer.
type InstagramProfile struct {
	Name                 string
	Username             string
	ProfilePic           string
	FollowerCount        int
	IsUserFollowBusiness bool
	IsBusinessFollowUser bool
	IsVerifiedUser       bool
}

// SetInstagramProfile sets the profile returned for igsid. Graph only
// returns it once the customer has messaged the business; before that the
// call fails with "User consent is required".
func (s *Server) SetInstagramProfile(igsid string, p InstagramProfile) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.igProfiles[igsid] = p
}

type igSendRequest struct {
	Recipient *struct {
		ID string `json:"id"`
	} `json:"recipient"`
	MessagingType string `json:"messaging_type"`
	Tag           string `json:"tag"`
	Message       *struct {
		Text       string `json:"text"`
		Attachment *struct {
			Type    string `json:"type"`
			Payload struct {
				URL string `json:"url"`
			} `json:"payload"`
		} `json:"attachment"`
		QuickReplies []json.RawMessage `json:"quick_replies"`
	} `json:"message"`
	SenderAction string `json:"sender_action"`
	Payload      *struct {
		MessageID string `json:"message_id"`
		Reaction  string `json:"reaction"`
	} `json:"payload"`
}

func (s *Server) handleIGSend(w http.ResponseWriter, acc *igAccount, body []byte) {
	var req igSendRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeGraphError(w, errIGInvalidParam("Request body is not valid JSON: "+err.Error()))
		return
	}
	if req.Recipient == nil || req.Recipient.ID == "" {
		writeGraphError(w, errIGInvalidParam("The parameter recipient is required"))
		return
	}
	igsid := req.Recipient.ID
	humanAgent := false
	switch req.MessagingType {
	case "", "RESPONSE", "UPDATE":
	case "MESSAGE_TAG":
		if req.Tag != "HUMAN_AGENT" {
			writeGraphError(w, errIGInvalidParam(fmt.Sprintf("Param tag must be HUMAN_AGENT for Instagram, got %q", req.Tag)))
			return
		}
		humanAgent = true
	default:
		writeGraphError(w, errIGInvalidParam(fmt.Sprintf("Param messaging_type must be one of {RESPONSE, UPDATE, MESSAGE_TAG}, got %q", req.MessagingType)))
		return
	}
	if msg := validateIGSend(&req); msg != "" {
		writeGraphError(w, errIGInvalidParam(msg))
		return
	}

	now := s.clock()
	s.mu.Lock()
	last, seen := s.igLastIn[pairKey{acc.id, igsid}]
	s.mu.Unlock()
	if !seen {
		// Graph cannot resolve an IGSID that never wrote to this account.
		writeGraphError(w, errIGNoUser())
		return
	}
	age := now.Sub(last)
	if age >= customerWindow && !(humanAgent && age < humanAgentWindow) {
		writeGraphError(w, errIGOutsideWindow())
		return
	}

	if req.SenderAction != "" {
		writeJSON(w, http.StatusOK, map[string]string{"recipient_id": igsid})
		return
	}
	mid := newIGMID(acc.id)

	echo := igMessage{Text: req.Message.Text}
	if a := req.Message.Attachment; a != nil {
		var att igAttachment
		att.Type, att.Payload.URL = a.Type, a.Payload.URL
		echo.Attachments = []igAttachment{att}
	}
	s.scheduleIGEcho(acc, igsid, mid, echo)
	writeJSON(w, http.StatusOK, struct {
		RecipientID string `json:"recipient_id"`
		MessageID   string `json:"message_id"`
	}{igsid, mid})
}

func validateIGSend(req *igSendRequest) string {
	if req.SenderAction != "" {
		if req.Message != nil {
			return "Param sender_action cannot be sent together with message"
		}
		switch req.SenderAction {
		case "typing_on", "typing_off", "mark_seen":
		case "react", "unreact":
			if req.Payload == nil || req.Payload.MessageID == "" {
				return "Param payload[message_id] is required for sender_action " + req.SenderAction
			}
			if req.SenderAction == "react" && req.Payload.Reaction == "" {
				return "Param payload[reaction] is required for sender_action react"
			}
		default:
			return fmt.Sprintf("Param sender_action has an unsupported value %q", req.SenderAction)
		}
		return ""
	}
	m := req.Message
	switch {
	case m == nil:
		return "The parameter message is required"
	case m.Text != "" && m.Attachment != nil:
		return "Param message must have either text or attachment, not both"
	case m.Text == "" && m.Attachment == nil:
		return "Param message must have text or attachment"
	case utf8.RuneCountInString(m.Text) > 1000:
		return "Param message[text] must be at most 1000 characters long"
	case len(m.QuickReplies) > 13:
		return "Param message[quick_replies] must have at most 13 items"
	}
	if a := m.Attachment; a != nil {
		switch a.Type {
		case "image", "video", "audio", "file":
		default:
			return fmt.Sprintf("Param message[attachment][type] has an unsupported value %q", a.Type)
		}
		u, err := url.Parse(a.Payload.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return "Param message[attachment][payload][url] must be an absolute http(s) URL"
		}
	}
	return ""
}

type igProfileResponse struct {
	Name                 *string `json:"name,omitempty"`
	Username             *string `json:"username,omitempty"`
	ProfilePic           *string `json:"profile_pic,omitempty"`
	FollowerCount        *int    `json:"follower_count,omitempty"`
	IsUserFollowBusiness *bool   `json:"is_user_follow_business,omitempty"`
	IsBusinessFollowUser *bool   `json:"is_business_follow_user,omitempty"`
	IsVerifiedUser       *bool   `json:"is_verified_user,omitempty"`
	ID                   string  `json:"id"`
}

// handleIGProfile answers GET /{IGSID}?fields=...; it reports false when
// the token belongs to no Instagram account or igsid is unknown to Meta.
func (s *Server) handleIGProfile(w http.ResponseWriter, r *http.Request, token, igsid string) bool {
	s.mu.Lock()
	var ownsAccount, messaged bool
	for _, a := range s.igAccounts {
		if a.token != token {
			continue
		}
		ownsAccount = true
		if _, ok := s.igLastIn[pairKey{a.id, igsid}]; ok {
			messaged = true
		}
	}
	p, hasProfile := s.igProfiles[igsid]
	s.mu.Unlock()

	switch {
	case !ownsAccount:
		return false
	case !messaged && hasProfile:
		writeGraphError(w, errIGConsent())
		return true
	case !messaged:
		return false
	case !hasProfile:
		p = defaultIGProfile(igsid)
	}

	fields := r.URL.Query().Get("fields")
	if fields == "" {
		fields = "name"
	}
	resp := igProfileResponse{ID: igsid}
	for _, f := range strings.Split(fields, ",") {
		switch strings.TrimSpace(f) {
		case "name":
			resp.Name = &p.Name
		case "username":
			resp.Username = &p.Username
		case "profile_pic":
			resp.ProfilePic = &p.ProfilePic
		case "follower_count":
			resp.FollowerCount = &p.FollowerCount
		case "is_user_follow_business":
			resp.IsUserFollowBusiness = &p.IsUserFollowBusiness
		case "is_business_follow_user":
			resp.IsBusinessFollowUser = &p.IsBusinessFollowUser
		case "is_verified_user":
			resp.IsVerifiedUser = &p.IsVerifiedUser
		case "id", "":
		default:
			writeGraphError(w, errIGInvalidParam(fmt.Sprintf("Tried accessing nonexisting field (%s) on node type (IGUser)", f)))
			return true
		}
	}
	writeJSON(w, http.StatusOK, resp)
	return true
}

func defaultIGProfile(igsid string) InstagramProfile {
	short := igsid
	if len(short) > 6 {
		short = short[len(short)-6:]
	}
	return InstagramProfile{
		Name:          "Sandbox Customer " + short,
		Username:      "sandbox.customer." + short,
		ProfilePic:    "https://scontent.cdninstagram.com/v/t51.2885-19/sandbox_" + igsid + ".jpg",
		FollowerCount: 42,
	}
}
