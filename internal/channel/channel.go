// Package channel holds the provider-neutral message model that every
// messenger (WhatsApp Cloud API, Instagram Messaging) is parsed into, and the
// interfaces the rest of the gateway uses to talk to a messenger. It knows
// nothing provider-specific.
package channel

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Type names a messenger.
type Type string

const (
	WhatsApp  Type = "whatsapp"
	Instagram Type = "instagram"
)

// Valid reports whether t is a messenger the gateway supports.
func (t Type) Valid() bool { return t == WhatsApp || t == Instagram }

// MsgType is the normalised kind of a message.
type MsgType string

const (
	MsgText         MsgType = "text"
	MsgImage        MsgType = "image"
	MsgAudio        MsgType = "audio" // an attached audio file
	MsgVoice        MsgType = "voice" // a recorded voice note
	MsgVideo        MsgType = "video"
	MsgDocument     MsgType = "document"
	MsgSticker      MsgType = "sticker"
	MsgLocation     MsgType = "location"
	MsgContacts     MsgType = "contacts"
	MsgInteractive  MsgType = "interactive" // answer to an interactive button or list
	MsgButton       MsgType = "button"      // tap on a template quick-reply button
	MsgReaction     MsgType = "reaction"
	MsgPostback     MsgType = "postback"      // Instagram icebreaker / template button
	MsgStoryMention MsgType = "story_mention" // Instagram
	MsgShare        MsgType = "share"         // Instagram shared post / reel
	MsgTemplate     MsgType = "template"      // outbound only
	MsgSystem       MsgType = "system"
	MsgUnsupported  MsgType = "unsupported"
)

// IsMedia reports whether a message of this type carries a file.
func (t MsgType) IsMedia() bool {
	switch t {
	case MsgImage, MsgAudio, MsgVoice, MsgVideo, MsgDocument, MsgSticker:
		return true
	}
	return false
}

// Status of an outbound message. Order matters: a status never goes back.
type Status string

const (
	StatusQueued    Status = "queued"
	StatusSent      Status = "sent"
	StatusDelivered Status = "delivered"
	StatusRead      Status = "read"
	StatusFailed    Status = "failed"
	StatusReceived  Status = "received" // inbound messages
	StatusDeleted   Status = "deleted"  // the customer unsent it (Instagram)
)

var statusRank = map[Status]int{
	StatusQueued:    0,
	StatusSent:      1,
	StatusDelivered: 2,
	StatusRead:      3,
}

// Advances reports whether moving from cur to next is a step forward.
// sent < delivered < read; failed is terminal except that a read receipt
// proves delivery, so read after failed is accepted (seen on multi-device
// users). Nothing moves back.
func Advances(cur, next Status) bool {
	if cur == next {
		return false
	}
	switch next {
	case StatusFailed:
		return cur == StatusQueued || cur == StatusSent
	case StatusDeleted:
		return cur != StatusDeleted
	}
	if cur == StatusFailed {
		return next == StatusRead || next == StatusDelivered
	}
	nr, ok := statusRank[next]
	if !ok {
		return false
	}
	return nr > statusRank[cur]
}

// ProviderError is an error as the messenger reported it.
type ProviderError struct {
	Code    int    `json:"code"`
	Subcode int    `json:"subcode,omitempty"`
	Title   string `json:"title,omitempty"`
	Message string `json:"message,omitempty"`
	Details string `json:"details,omitempty"`
}

func (e ProviderError) String() string {
	// Graph messages already start with their code ("(#100) Invalid
	// parameter"); prefixing it again read "(#100) (#100) …".
	prefix := fmt.Sprintf("(#%d) ", e.Code)
	s := prefix + strings.TrimPrefix(cmp.Or(e.Title, e.Message), prefix)
	if e.Details != "" {
		s += ": " + e.Details
	}
	return s
}

// Customer is the person on the other side.
type Customer struct {
	ExternalID string `json:"external_id"` // wa_id or Instagram-scoped id
	Name       string `json:"name,omitempty"`
	Phone      string `json:"phone,omitempty"` // E.164 with '+', WhatsApp only
	Username   string `json:"username,omitempty"`
	// AvatarURL is a picture link where the messenger gives one; such
	// links expire, so it is refreshed whenever the profile is read.
	AvatarURL string `json:"avatar_url,omitempty"`
}

// Media describes a file attached to a message.
type Media struct {
	ProviderID string `json:"provider_id,omitempty"` // WhatsApp media id
	URL        string `json:"url,omitempty"`         // Instagram CDN link, or an outbound link
	MimeType   string `json:"mime_type,omitempty"`
	SHA256     string `json:"sha256,omitempty"`
	Caption    string `json:"caption,omitempty"`
	Filename   string `json:"filename,omitempty"`
	Animated   bool   `json:"animated,omitempty"`
}

// Location is a shared point.
type Location struct {
	Latitude  float64 `json:"latitude"`
	Longitude float64 `json:"longitude"`
	Name      string  `json:"name,omitempty"`
	Address   string  `json:"address,omitempty"`
	URL       string  `json:"url,omitempty"`
}

// Reaction targets another message by its external id. An empty Emoji
// means the reaction was removed.
type Reaction struct {
	TargetExternalID string `json:"target_external_id"`
	Emoji            string `json:"emoji,omitempty"`
}

// Inbound is one event from a customer (or, with Echo, a copy of a message
// the business sent from another client).
type Inbound struct {
	ExternalID string    `json:"external_id"` // wamid / mid
	Customer   Customer  `json:"customer"`
	Type       MsgType   `json:"type"`
	Text       string    `json:"text,omitempty"`
	Media      *Media    `json:"media,omitempty"`
	Location   *Location `json:"location,omitempty"`
	Reaction   *Reaction `json:"reaction,omitempty"`
	// QuotedExternalID is the external id of the message being replied to.
	QuotedExternalID string `json:"quoted_external_id,omitempty"`
	Forwarded        bool   `json:"forwarded,omitempty"`
	// Echo marks a message the business itself sent (Instagram is_echo).
	Echo bool `json:"echo,omitempty"`
	// Deleted marks the customer unsending ExternalID (Instagram).
	Deleted   bool            `json:"deleted,omitempty"`
	Timestamp time.Time       `json:"timestamp"`
	Errors    []ProviderError `json:"errors,omitempty"`
	// Extra keeps structured detail that has no column of its own: shared
	// contacts, interactive reply ids, button payloads, ad referral, story
	// links. It is stored as JSON with the message.
	Extra map[string]any `json:"extra,omitempty"`
}

// StatusUpdate reports what happened to an outbound message.
type StatusUpdate struct {
	ExternalID  string         `json:"external_id"`
	Status      Status         `json:"status"`
	Timestamp   time.Time      `json:"timestamp"`
	RecipientID string         `json:"recipient_id,omitempty"`
	Error       *ProviderError `json:"error,omitempty"`
}

// Envelope groups what one webhook delivery says about one channel.
type Envelope struct {
	ChannelType Type
	// AccountID routes the envelope: the phone_number_id for WhatsApp, the
	// Instagram professional account id for Instagram.
	AccountID string
	// Owner is the business account the delivery says holds AccountID:
	// the WABA id (entry.id) for WhatsApp; empty for Instagram, whose
	// entry.id is the account itself. A channel receives an envelope only
	// from the owner it was proven to belong to.
	Owner    string
	Messages []Inbound
	Statuses []StatusUpdate
	// Errors are account-level problems not tied to a message.
	Errors []ProviderError
}

// Batch is the whole of one webhook delivery, normalised.
type Batch struct {
	Envelopes []Envelope
}

// Parser turns the raw body of a verified webhook into a Batch. It must
// never panic on any input; a payload it cannot understand is an error.
type Parser interface {
	Parse(body []byte) (*Batch, error)
}

// Credentials are what a sender needs to act as one channel.
type Credentials struct {
	AccountID   string // phone_number_id / Instagram account id
	AccessToken string
}

// Template is an approved WhatsApp template with positional body params.
type Template struct {
	Name     string   `json:"name"`
	Language string   `json:"language"`
	Params   []string `json:"params,omitempty"`
}

// Outbound is a message to send.
type Outbound struct {
	To       string
	Type     MsgType // text, image, audio, voice, video, document, sticker, template, reaction
	Text     string
	Media    *Media // by ProviderID (uploaded) or URL
	Template *Template
	Reaction *Reaction
	// QuotedExternalID makes the message a reply quoting that message.
	QuotedExternalID string
	// HumanAgent sends with Instagram's HUMAN_AGENT tag (up to 7 days).
	HumanAgent bool
}

// SendResult is what the messenger answered to an accepted send.
type SendResult struct {
	ExternalID  string
	RecipientID string // the customer id as the messenger normalised it
}

// Sender sends through one messenger's API.
type Sender interface {
	Send(ctx context.Context, creds Credentials, msg *Outbound) (*SendResult, error)
	// UploadMedia uploads a file and returns the provider's media id.
	// Messengers without uploads return ErrUnsupported.
	UploadMedia(ctx context.Context, creds Credentials, mimeType, filename string, data []byte) (string, error)
}

// ReadMarker tells the messenger the business read a customer's message
// (and every one before it), so the customer's ticks turn blue.
type ReadMarker interface {
	MarkRead(ctx context.Context, creds Credentials, externalID string) error
}

// MediaFetcher downloads a file a customer sent.
type MediaFetcher interface {
	FetchMedia(ctx context.Context, creds Credentials, m *Media, maxBytes int64) (*Download, error)
}

// ProfileFetcher looks a customer up where webhooks carry only an id
// (Instagram sends no name).
type ProfileFetcher interface {
	FetchProfile(ctx context.Context, creds Credentials, externalID string) (*Customer, error)
}

// Account is what the messenger says about the account a token was
// checked for.
type Account struct {
	ID string // phone_number_id / Instagram account id, as the messenger confirmed it
	// Owner is the business account that holds it: the WABA id for
	// WhatsApp; empty for Instagram, whose webhooks name the account itself.
	Owner        string
	DisplayPhone string // WhatsApp: the number as Meta shows it
	Name         string // WhatsApp verified name / Instagram username
}

// AccountVerifier proves that a token may act for an account, so that one
// tenant cannot connect another's number by knowing its id.
type AccountVerifier interface {
	// VerifyAccount asks the messenger, with creds.AccessToken, for the
	// account creds.AccountID and, where the messenger has one, checks that
	// it belongs to owner (the WABA). A refusal wraps ErrAccountNotProven;
	// any other error means the messenger could not be asked (network,
	// throttling) and proves nothing either way.
	VerifyAccount(ctx context.Context, creds Credentials, owner string) (*Account, error)
}

// ErrAccountNotProven: the messenger did not accept the token for that
// account, or the account is not in the given business account. Meta does
// not tell an unknown id from one the token may not see, and neither does
// this error.
var ErrAccountNotProven = errors.New("channel: the messenger did not confirm the token for this account")

// Download is a fetched file.
type Download struct {
	Data     []byte
	MimeType string
}

// ErrUnsupported is returned for an operation a messenger does not offer.
var ErrUnsupported = errors.New("channel: operation not supported by this messenger")

// ErrTooLarge is returned by FetchMedia for a file over the caller's limit.
// Fetching again would not help.
var ErrTooLarge = errors.New("channel: media exceeds the size limit")

// Outcome tells the queue what to do about a failed send.
type Outcome int

const (
	// OutcomeRetry: a transient problem (throttling, a 5xx); try later.
	OutcomeRetry Outcome = iota
	// OutcomeFailed: the message cannot be delivered; mark it failed.
	OutcomeFailed
	// OutcomeChannelError: the channel itself is broken (token expired or
	// revoked); put the channel into the error state and fail the message.
	OutcomeChannelError
)

// SendError is a send the messenger refused, classified.
type SendError struct {
	Outcome    Outcome
	Err        ProviderError
	HTTPStatus int
	// RetryAfter, when set, is how long the messenger asked us to wait.
	RetryAfter time.Duration
}

func (e *SendError) Error() string {
	return fmt.Sprintf("send refused (http %d): %s", e.HTTPStatus, e.Err.String())
}

// ExtraJSON encodes Extra for storage; nil when empty.
func (m *Inbound) ExtraJSON() []byte {
	if len(m.Extra) == 0 {
		return nil
	}
	b, err := json.Marshal(m.Extra)
	if err != nil {
		return nil
	}
	return b
}

// TemplateInfo is a message template approved (or not yet) by the messenger,
// as its business account lists it. Components are the messenger's JSON
// as is: the gateway shows them and counts their variables.
type TemplateInfo struct {
	Name       string
	Language   string
	Category   string
	Status     string
	Components json.RawMessage
}

// TemplateLister reads the message templates of a business account (owner:
// the WABA id for WhatsApp) with the channel's token. Every page is read,
// so the answer is the whole set or an error.
type TemplateLister interface {
	ListTemplates(ctx context.Context, creds Credentials, owner string) ([]TemplateInfo, error)
}
