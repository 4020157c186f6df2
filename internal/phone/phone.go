// Package phone turns numbers as people write them in Russia and
// Kazakhstan (8 916 123-45-67, +7 (701) 234 56 78, 79161234567) into E.164.
package phone

import (
	"errors"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// ErrInvalid is returned for input that is not a possible phone number.
var ErrInvalid = errors.New("phone: not a valid phone number")

// Options say how to read numbers without a country code.
type Options struct {
	// Trunk8 reads an 11-digit number starting with 8 as the Russian and
	// Kazakh trunk prefix (8XXXXXXXXXX → +7XXXXXXXXXX). Off for tenants
	// whose customers are elsewhere in Asia, where 8 starts real codes.
	Trunk8 bool
	// Region is the ISO country assumed for national numbers ("RU").
	Region string
}

// Default suits the first customers: Russia and Kazakhstan.
var Default = Options{Trunk8: true, Region: "RU"}

// Normalize returns the number in E.164 form, with the leading '+'. Words
// around the number ("тел. 8 912 …", "… (мобильный)") are ignored, as CRM
// records and people's notes carry them; inside it only the usual
// separators may stand.
func Normalize(raw string, o Options) (string, error) {
	s := trimToNumber(raw)
	plus := strings.HasPrefix(s, "+")
	var digits strings.Builder
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits.WriteRune(r)
		case r == '+' || r == ' ' || r == '-' || r == '(' || r == ')' || r == '.' || r == '\u00a0':
		default:
			return "", ErrInvalid
		}
	}
	d := digits.String()
	if len(d) < 8 || len(d) > 15 {
		return "", ErrInvalid
	}
	var candidate string
	switch {
	case plus:
		candidate = "+" + d
	case o.Trunk8 && len(d) == 11 && d[0] == '8':
		candidate = "+7" + d[1:]
	case len(d) == 10 && o.Region == "RU" && d[0] != '0':
		// A national number without prefix: 9161234567.
		candidate = "+7" + d
	default:
		// wa_id style: country code without '+'.
		candidate = "+" + d
	}
	num, err := phonenumbers.Parse(candidate, o.Region)
	if err != nil || !phonenumbers.IsPossibleNumber(num) {
		return "", ErrInvalid
	}
	return phonenumbers.Format(num, phonenumbers.E164), nil
}

// trimToNumber drops what stands before the first digit or '+' and after
// the last digit.
func trimToNumber(raw string) string {
	start := strings.IndexFunc(raw, func(r rune) bool { return r == '+' || (r >= '0' && r <= '9') })
	end := strings.LastIndexFunc(raw, func(r rune) bool { return r >= '0' && r <= '9' })
	if start < 0 || end < start {
		return ""
	}
	return raw[start : end+1]
}

// Digits is the E.164 number without '+', as WhatsApp's wa_id.
func Digits(e164 string) string { return strings.TrimPrefix(e164, "+") }
