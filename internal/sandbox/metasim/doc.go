// Package metasim is an in-process simulator of Meta's messaging platform:
// the WhatsApp Cloud API and Instagram Messaging as seen from a business
// integration. It serves the Graph API endpoints a gateway calls (send,
// mark-read, media upload/download, Instagram profile) and plays Meta's side of
// the webhook contract: it posts signed inbound messages, delivery statuses and
// Instagram echoes to the gateway.
//
// The simulator only knows Meta's external contract (see
// shared/docs/meta-cloud-api.md and shared/fixtures/meta); it deliberately
// imports nothing else from this repository, so it cannot drift towards what
// the gateway happens to do instead of what Meta does.
//
// A Server is an http.Handler and is meant to be wrapped by httptest.NewServer
// in tests or served by cmd/metasim for manual exploration. All methods are
// safe for concurrent use.
package metasim
