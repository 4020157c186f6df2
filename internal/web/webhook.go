package web

import (
	"crypto/subtle"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/channel/graph"
)

// refusalLogs keep a misconfigured app secret or verify token visible in
// the log without letting a flood of forged deliveries flood it too.
type refusalLogs struct {
	verify, signature *rate.Sometimes
}

func newRefusalLogs() refusalLogs {
	return refusalLogs{
		verify:    &rate.Sometimes{First: 1, Interval: time.Minute},
		signature: &rate.Sometimes{First: 1, Interval: time.Minute},
	}
}

// verifyWebhook answers Meta's subscription check.
func (s *Server) verifyWebhook(c *gin.Context) {
	mode := c.Query("hub.mode")
	token := c.Query("hub.verify_token")
	if mode != "subscribe" || s.d.MetaVerifyToken == "" ||
		subtle.ConstantTimeCompare([]byte(token), []byte(s.d.MetaVerifyToken)) != 1 {
		s.refusals.verify.Do(func() {
			s.d.Log.Warn("Meta webhook verification refused: hub.verify_token does not match SWITCHBOARD_META_VERIFY_TOKEN (or it is unset); logged at most once a minute",
				"mode", mode, "verify_token_set", s.d.MetaVerifyToken != "", "remote", c.ClientIP())
		})
		fail(c, http.StatusForbidden, "verification_failed", "hub.mode must be subscribe and hub.verify_token must match")
		return
	}
	c.Data(http.StatusOK, "text/plain; charset=utf-8", []byte(c.Query("hub.challenge")))
}

// receiveWebhook verifies, parses and stores a delivery before answering.
// A 200 means it is in the database; anything else makes Meta retry,
// except for problems a retry cannot fix (bad signature, bad JSON), which
// get a 4xx that names them.
func (s *Server) receiveWebhook(c *gin.Context) {
	start := time.Now()
	provider := "meta"
	count := func(result string) {
		s.d.Metrics.WebhooksReceived.WithLabelValues(provider, result).Inc()
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, s.d.WebhookMaxBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			count("too_large")
			fail(c, http.StatusRequestEntityTooLarge, "body_too_large", "webhook body exceeds the size limit")
			return
		}
		count("error")
		fail(c, http.StatusBadRequest, "body_unreadable", "could not read the body")
		return
	}
	sig := c.GetHeader("X-Hub-Signature-256")
	if sig == "" {
		count("bad_signature")
		s.refusals.signature.Do(func() {
			s.d.Log.Warn("Meta webhook refused: no X-Hub-Signature-256 header; logged at most once a minute",
				"remote", c.ClientIP(), "bytes", len(body))
		})
		fail(c, http.StatusUnauthorized, "signature_missing", "X-Hub-Signature-256 header is required")
		return
	}
	if s.d.MetaAppSecret == "" || !graph.VerifySignature(s.d.MetaAppSecret, body, sig) {
		count("bad_signature")
		s.refusals.signature.Do(func() {
			s.d.Log.Warn("Meta webhook refused: X-Hub-Signature-256 does not match; is SWITCHBOARD_META_APP_SECRET the app's secret? Logged at most once a minute",
				"app_secret_set", s.d.MetaAppSecret != "", "remote", c.ClientIP(), "bytes", len(body))
		})
		fail(c, http.StatusUnauthorized, "signature_invalid", "X-Hub-Signature-256 does not match the body")
		return
	}
	batch, err := s.d.Registry.ParseWebhook(body)
	if err != nil {
		var unknown *channel.ErrUnknownObject
		if errors.As(err, &unknown) {
			// A field we did not subscribe to handling; Meta must not
			// disable the webhook over it.
			count("ignored")
			c.JSON(http.StatusOK, gin.H{"status": "ignored", "reason": err.Error()})
			return
		}
		count("bad_request")
		// The parser's words name our types and offsets: the log has them,
		// the caller gets a stable answer.
		s.d.Log.Warn("signed Meta webhook could not be parsed", "err", err, "bytes", len(body))
		fail(c, http.StatusBadRequest, "payload_invalid", "the body is not a Meta webhook payload this gateway can read")
		return
	}
	if len(batch.Envelopes) > 0 {
		provider = string(batch.Envelopes[0].ChannelType)
	}
	res, err := s.d.Messaging.Ingest(c.Request.Context(), batch, body)
	if err != nil {
		count("error")
		s.d.Log.Error("webhook not stored; Meta will retry", "err", err)
		fail(c, http.StatusServiceUnavailable, "store_failed", "could not store the delivery; retry")
		return
	}
	switch {
	case res.Unrouted > 0 && res.Stored+res.Statuses+res.Duplicates == 0:
		count("unknown_channel")
	case res.Stored == 0 && res.Statuses == 0 && res.Duplicates > 0:
		count("duplicate")
	default:
		count("stored")
	}
	s.d.Metrics.WebhookAck.Observe(time.Since(start).Seconds())
	c.JSON(http.StatusOK, gin.H{"status": "ok", "stored": res.Stored, "duplicates": res.Duplicates, "statuses": res.Statuses, "unrouted": res.Unrouted})
}
