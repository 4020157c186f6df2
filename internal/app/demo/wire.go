// Package demo wires the gateway to the Meta, Bitrix24 and amoCRM
// simulators on loopback: the configuration both the end-to-end tests
// (apptest) and `switchboard demo` give a gateway that talks to simulators,
// and the demo itself (Start), which seeds a workspace a person can try.
package demo

import (
	"encoding/json"
	"fmt"

	amocrmwidget "github.com/switchboard/switchboard/web/amocrm-widget"
)

// Keys are the credentials a gateway and its simulators share. Empty
// fields are left out of the configuration (the gateway then generates
// its admin token and secret key in its data directory).
type Keys struct {
	AdminToken  string
	SecretKey   string
	AppSecret   string
	VerifyToken string
	// The Bitrix24 application.
	B24ClientID string
	B24Secret   string
	// The amoCRM integration and its Chats API (amojo) channel.
	AmoClientID      string
	AmoSecret        string
	AmoChannelID     string
	AmoChannelSecret string
	AmoChannelCode   string
}

// URLs are where the gateway and each simulator listen; an empty
// simulator URL leaves that simulator out.
type URLs struct {
	Gateway string
	Graph   string
	B24     string
	Amo     string
}

// GatewayEnv is the gateway's configuration, as SWITCHBOARD_* variables,
// for running against the simulators: their base URLs, the shared keys,
// and private (loopback) endpoints allowed, which only a sandbox wants.
func GatewayEnv(k Keys, u URLs) []string {
	env := []string{
		"SWITCHBOARD_META_APP_SECRET=" + k.AppSecret,
		"SWITCHBOARD_META_VERIFY_TOKEN=" + k.VerifyToken,
		"SWITCHBOARD_META_GRAPH_URL=" + u.Graph,
		"SWITCHBOARD_PUBLIC_URL=" + u.Gateway,
		"SWITCHBOARD_ALLOW_PRIVATE_ENDPOINTS=true",
		"SWITCHBOARD_BITRIX24_CLIENT_ID=" + k.B24ClientID,
		"SWITCHBOARD_BITRIX24_CLIENT_SECRET=" + k.B24Secret,
	}
	if k.AdminToken != "" {
		env = append(env, "SWITCHBOARD_ADMIN_TOKEN="+k.AdminToken)
	}
	if k.SecretKey != "" {
		env = append(env, "SWITCHBOARD_SECRET_KEY="+k.SecretKey)
	}
	if u.B24 != "" {
		env = append(env, "SWITCHBOARD_BITRIX24_OAUTH_URL="+u.B24)
	}
	if u.Amo != "" {
		env = append(env, "SWITCHBOARD_AMOCRM_CLIENT_ID="+k.AmoClientID, "SWITCHBOARD_AMOCRM_CLIENT_SECRET="+k.AmoSecret,
			"SWITCHBOARD_AMOCRM_BASE_URL="+u.Amo)
		if k.AmoChannelID != "" {
			env = append(env, "SWITCHBOARD_AMOCRM_CHANNEL_ID="+k.AmoChannelID, "SWITCHBOARD_AMOCRM_CHANNEL_SECRET="+k.AmoChannelSecret,
				"SWITCHBOARD_AMOCRM_CHANNEL_CODE="+k.AmoChannelCode)
		}
	}
	return env
}

// WidgetDPSettings are the amoCRM widget manifest's digital pipeline
// settings (name: required), which the amoCRM simulator holds saved
// actions to, as amoCRM does.
func WidgetDPSettings() (map[string]bool, error) {
	raw, err := amocrmwidget.Files.ReadFile("manifest.json")
	if err != nil {
		return nil, fmt.Errorf("demo: read the widget manifest: %w", err)
	}
	var m struct {
		DP struct {
			Settings map[string]struct {
				Required bool `json:"required"`
			} `json:"settings"`
		} `json:"dp"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("demo: parse the widget manifest: %w", err)
	}
	out := map[string]bool{}
	for k, v := range m.DP.Settings {
		out[k] = v.Required
	}
	return out, nil
}
