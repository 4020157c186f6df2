package phone

import (
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// SearchVariants lists the forms in which a CRM record may hold the
// customer's number e164 and which the workspace's rule o reads as that
// very number: "+79123456789", "79123456789" (a wa_id), and where the
// country has a national prefix the national forms "89123456789" and
// "9123456789". A CRM's own search matches digits literally (Bitrix24's
// findbycomm only strips formatting and a few prefixes, amoCRM's query is
// a substring search), so the gateway asks for each form and then keeps
// only the records whose stored number Same confirms.
//
// Every candidate is checked with Normalize under o, so the variants never
// disagree with the rule used for confirmation: with the 8→7 switch off
// (Asia) no "8…" form of a +7 number is tried, and a national form is
// only tried where the rule would read it back as e164. Nil when e164 is
// not a number.
func SearchVariants(e164 string, o Options) []string {
	want, err := Normalize(e164, Options{Region: o.Region})
	if err != nil {
		return nil
	}
	d := Digits(want)
	cands := []string{want, d}
	if num, err := phonenumbers.Parse(want, ""); err == nil {
		nsn := phonenumbers.GetNationalSignificantNumber(num)
		region := phonenumbers.GetRegionCodeForNumber(num)
		if region == "" {
			region = phonenumbers.GetRegionCodeForCountryCode(int(num.GetCountryCode()))
		}
		if prefix := phonenumbers.GetNddPrefixForRegion(region, true); prefix != "" {
			cands = append(cands, prefix+nsn)
		}
		cands = append(cands, nsn)
	}
	var out []string
	seen := map[string]bool{}
	for _, c := range cands {
		if seen[c] {
			continue
		}
		seen[c] = true
		if got, err := Normalize(c, o); err == nil && got == want {
			out = append(out, c)
		}
	}
	return out
}

// Same says whether a number as a person or a CRM record wrote it
// ("8 (912) 345-67-89", "тел. +7 912 …") is the customer's number e164
// under the workspace's rule.
func Same(stored, e164 string, o Options) bool {
	want, err := Normalize(e164, Options{Region: o.Region})
	if err != nil {
		return false
	}
	got, err := Normalize(stored, o)
	return err == nil && got == want
}

// AnySame says whether any of a record's numbers is the customer's.
func AnySame(stored []string, e164 string, o Options) bool {
	for _, s := range stored {
		if strings.TrimSpace(s) != "" && Same(s, e164, o) {
			return true
		}
	}
	return false
}

// NationalDigits is the national significant number of e164 ("9123456789"
// for +79123456789): the digits every way of writing the number contains.
// A CRM whose search is a substring match over digits (amoCRM's query)
// finds every stored form with it in one request; the hits are then
// confirmed with AnySame under the workspace's rule. "" when e164 is not a
// number.
func NationalDigits(e164 string) string {
	want, err := Normalize(e164, Options{})
	if err != nil {
		return ""
	}
	num, err := phonenumbers.Parse(want, "")
	if err != nil {
		return Digits(want)
	}
	return phonenumbers.GetNationalSignificantNumber(num)
}
