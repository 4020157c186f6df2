package amocrm

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
)

// AccountDomains are the parent domains of amoCRM and Kommo accounts.
var AccountDomains = []string{"amocrm.ru", "kommo.com", "amocrm.com"}

// notAccounts are hosts under those domains that are not accounts.
var notAccounts = map[string]bool{"www": true, "api": true, "amojo": true, "developers": true}

var labelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// HostPolicy decides which account hosts the gateway may call. The host
// comes from the install callback's referer, which anyone can forge; a
// forged callback naming another host must never make the gateway call it
// (with the client secret in the token request).
type HostPolicy struct {
	// BaseURL is one more allowed account base, for tests and the
	// simulator, e.g. http://127.0.0.1:9093: a referer equal to its host
	// (with port) is called at BaseURL, scheme included.
	BaseURL string
	// AllowPrivate lets BaseURL be a loopback or private address
	// (SWITCHBOARD_ALLOW_PRIVATE_ENDPOINTS). Without it such a base is
	// refused like any other. Names that resolve to private addresses are
	// refused at dial time by the gateway's netguard client.
	AllowPrivate bool
}

// AccountBase checks an account host (a referer: a bare host, no scheme,
// path or user) and returns the base URL to call: https://{host}, or
// BaseURL for the configured base.
func (p HostPolicy) AccountBase(host string) (string, error) {
	h := strings.ToLower(strings.TrimSpace(host))
	if h == "" || strings.ContainsAny(h, "/\\@?#% ") || strings.Contains(h, "://") {
		return "", fmt.Errorf("%w: %q", ErrInvalidHost, host)
	}
	if p.BaseURL != "" {
		bu, err := url.Parse(p.BaseURL)
		if err == nil && bu.Host != "" && strings.EqualFold(bu.Host, h) {
			if (bu.Scheme != "https" && bu.Scheme != "http") || bu.User != nil || (bu.Path != "" && bu.Path != "/") {
				return "", fmt.Errorf("%w: configured base %q", ErrInvalidHost, p.BaseURL)
			}
			if privateHost(bu.Hostname()) && !p.AllowPrivate {
				return "", fmt.Errorf("%w: %q is a private address (private endpoints not allowed)", ErrInvalidHost, host)
			}
			return bu.Scheme + "://" + bu.Host, nil
		}
	}
	for _, d := range AccountDomains {
		sub, ok := strings.CutSuffix(h, "."+d)
		if ok && labelRE.MatchString(sub) && !notAccounts[sub] {
			return "https://" + h, nil
		}
	}
	return "", fmt.Errorf("%w: %q is not an amoCRM or Kommo account host", ErrInvalidHost, host)
}

// AmojoBase returns the Chats API host for an account host: amojo.kommo.com
// for Kommo accounts, amojo.amocrm.ru otherwise.
func AmojoBase(accountHost string) string {
	h := strings.ToLower(accountHost)
	if strings.HasSuffix(h, ".kommo.com") || strings.HasSuffix(h, ".amocrm.com") {
		return "https://amojo.kommo.com"
	}
	return "https://amojo.amocrm.ru"
}

func privateHost(h string) bool {
	if strings.EqualFold(h, "localhost") || strings.HasSuffix(strings.ToLower(h), ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(h, "[]"))
	if err != nil {
		return net.ParseIP(h) != nil // unusual spellings: treat as private
	}
	ip = ip.Unmap()
	return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsUnspecified()
}
