package store

import "time"

// Workspace is one tenant: its channels, integrations and settings.
type Workspace struct {
	ID        string `gorm:"primaryKey" json:"id"`
	Name      string `json:"name"`
	Timezone  string `json:"timezone"`
	IsDefault bool   `json:"is_default"`
	// PhoneTrunk8 and PhoneRegion say how numbers typed by people are read
	// (see phone.Options).
	PhoneTrunk8 bool   `json:"phone_trunk8"`
	PhoneRegion string `json:"phone_region"`
	// DialogsPerHourLimit caps the dialogs each channel of the workspace
	// opens per hour of its clock (Timezone); 0 means no cap.
	DialogsPerHourLimit int       `json:"dialogs_per_hour_limit"`
	CreatedAt           time.Time `json:"created_at"`
	UpdatedAt           time.Time `json:"updated_at"`
}

// WorkspaceUpdate holds the settings a PATCH changes; nil leaves one as it is.
type WorkspaceUpdate struct {
	Name        *string
	Timezone    *string
	PhoneTrunk8 *bool
	PhoneRegion *string
	// DialogsPerHourLimit is validated by the caller (0..MaxDialogsPerHour).
	DialogsPerHourLimit *int
}

type APIToken struct {
	ID          string `gorm:"primaryKey"`
	WorkspaceID string
	Name        string
	TokenHash   string
	CreatedAt   time.Time
	RevokedAt   *time.Time
}

func (APIToken) TableName() string { return "api_tokens" }

// Channel states.
const (
	ChannelActive   = "active"
	ChannelDisabled = "disabled"
	ChannelError    = "error"
)

type Channel struct {
	ID           string `gorm:"primaryKey"`
	WorkspaceID  string
	Type         string
	Name         string
	State        string
	StateReason  string
	AccountID    string // phone_number_id or Instagram account id
	WabaID       string
	DisplayPhone string
	PageID       string
	// AccessToken is sealed by secret.Box; Store.Credentials opens it.
	AccessToken string
	SendRate    float64
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

type Contact struct {
	ID            string `gorm:"primaryKey"`
	WorkspaceID   string
	ChannelID     string
	ExternalID    string
	Name          string
	Phone         string
	Username      string
	AvatarURL     string
	LastInboundAt *time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
	// Created is set by UpsertContact when this call made the contact.
	Created bool `gorm:"-"`
}

// Media states.
const (
	MediaPending = "pending" // known, not downloaded yet
	MediaStored  = "stored"  // in the media store
	MediaRemote  = "remote"  // an outbound link we pass on, never stored
	MediaFailed  = "failed"
)

type Media struct {
	ID          string `gorm:"primaryKey"`
	WorkspaceID string
	ChannelID   string
	ProviderID  string
	SourceURL   string
	MimeType    string
	Filename    string
	Size        int64
	SHA256      string `gorm:"column:sha256"`
	StorageKey  string
	State       string
	Error       string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

func (Media) TableName() string { return "media" }

// Message directions.
const (
	Inbound  = "in"
	Outbound = "out"
)

type Message struct {
	ID               string `gorm:"primaryKey"`
	WorkspaceID      string
	ChannelID        string
	ContactID        string
	Direction        string
	Type             string
	Text             string
	MediaID          *string
	Extra            *string // JSON
	Template         *string // JSON
	ExternalID       *string
	QuotedMessageID  *string
	QuotedExternalID string
	HumanAgent       bool
	Status           string
	ErrorCode        int
	ErrorTitle       string
	ErrorDetail      string
	ProviderAt       *time.Time
	SentAt           *time.Time
	DeliveredAt      *time.Time
	ReadAt           *time.Time
	FailedAt         *time.Time
	// HeldUntil is set while the channel's dialog counter holds this queued
	// message back: when it is tried again.
	HeldUntil *time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
}

type OrphanStatus struct {
	ID          int64 `gorm:"primaryKey"`
	ChannelID   string
	ExternalID  string
	Status      string
	ErrorCode   int
	ErrorTitle  string
	ErrorDetail string
	OccurredAt  time.Time
	CreatedAt   time.Time
}

type UnroutedEvent struct {
	ID          int64 `gorm:"primaryKey"`
	ChannelType string
	AccountID   string
	Payload     string
	CreatedAt   time.Time
}
