package phone

import "testing"

func TestNormalize(t *testing.T) {
	cases := []struct {
		in   string
		o    Options
		want string
	}{
		{"8 (916) 123-45-67", Default, "+79161234567"},
		{"+7 916 123 45 67", Default, "+79161234567"},
		{"79161234567", Default, "+79161234567"},
		{"9161234567", Default, "+79161234567"},
		{"8 701 234 56 78", Default, "+77012345678"}, // Kazakhstan mobile
		{"+7 (727) 250-00-00", Default, "+77272500000"},
		{"77071234567", Default, "+77071234567"},
		{"+86 138 0013 8000", Default, "+8613800138000"},
		// With the trunk rule off, 8… is read as a country code (Asia).
		{"85291234567", Options{Trunk8: false, Region: "HK"}, "+85291234567"},
		{"84912345678", Options{Trunk8: false}, "+84912345678"},
		{"8613800138000", Options{Trunk8: false, Region: "CN"}, "+8613800138000"},
		{"8613800138000", Default, "+8613800138000"}, // 13 digits: never a trunk 8
		// Words around the number, as CRM records and notes have them.
		{"тел. 8 912 345-67-89", Default, "+79123456789"},
		{"Tel: +7 (912) 345 67 89 (мобильный)", Default, "+79123456789"},
		{"8 (912) 345-67-89 доб.", Default, "+79123456789"},
	}
	for _, c := range cases {
		got, err := Normalize(c.in, c.o)
		if err != nil || got != c.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "hello", "123", "+7 916 abc", "1234567890123456789", "8 912 abc 345 67 89", "тел."} {
		if got, err := Normalize(bad, Default); err == nil {
			t.Errorf("Normalize(%q) = %q, want error", bad, got)
		}
	}
	if Digits("+79161234567") != "79161234567" {
		t.Fatal("Digits")
	}
}
