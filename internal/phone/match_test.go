package phone

import (
	"slices"
	"testing"
)

var asia = Options{Trunk8: false, Region: "CN"}

func TestSearchVariants(t *testing.T) {
	cases := []struct {
		name string
		e164 string
		o    Options
		want []string
	}{
		{"RU, switch on", "+79123456789", Default, []string{"+79123456789", "79123456789", "89123456789", "9123456789"}},
		{"RU, switch on, wa_id given", "79123456789", Default, []string{"+79123456789", "79123456789", "89123456789", "9123456789"}},
		// Off, a Russian workspace still reads ten digits as +7, never 8… as +7.
		{"RU, switch off", "+79123456789", Options{Trunk8: false, Region: "RU"}, []string{"+79123456789", "79123456789", "9123456789"}},
		{"RU number, Asian workspace", "+79123456789", asia, []string{"+79123456789", "79123456789"}},
		{"KZ mobile", "+77012345678", Default, []string{"+77012345678", "77012345678", "87012345678", "7012345678"}},
		// China's national forms (0…, 138…) are not read back as China by
		// the rule, so they are not asked for: they would find strangers.
		{"China, switch on", "+8613800138000", Default, []string{"+8613800138000", "8613800138000"}},
		{"China, switch off", "+8613800138000", asia, []string{"+8613800138000", "8613800138000"}},
		{"not a number", "hello", Default, nil},
	}
	for _, c := range cases {
		got := SearchVariants(c.e164, c.o)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: SearchVariants(%q) = %q, want %q", c.name, c.e164, got, c.want)
		}
		for _, v := range got {
			if !Same(v, c.e164, c.o) {
				t.Errorf("%s: variant %q is not confirmed as %q", c.name, v, c.e164)
			}
		}
	}
}

func TestSame(t *testing.T) {
	cases := []struct {
		stored, e164 string
		o            Options
		want         bool
	}{
		{"8 (912) 345-67-89", "+79123456789", Default, true},
		{"+7 912 345 67 89", "+79123456789", Default, true},
		{"9123456789", "+79123456789", Default, true},
		{"тел. 8 912 345-67-89 (мобильный)", "+79123456789", Default, true},
		{"8 (912) 345-67-80", "+79123456789", Default, false},
		{"8 701 234 56 78", "+77012345678", Default, true}, // Kazakhstan
		// Asia: 8… is a country code, so a Russian-written number is not +7.
		{"8 (912) 345-67-89", "+79123456789", asia, false},
		{"+7 912 345 67 89", "+79123456789", asia, true},
		{"+86 138 0013 8000", "+8613800138000", asia, true},
		{"8613800138000", "+8613800138000", asia, true},
		{"8613800138000", "+8613800138000", Default, true}, // 13 digits: never a trunk 8
		// Bitrix24's own index reads 8613800138000 as 7613800138000; that
		// record is not the Chinese customer.
		{"+7 613 800 13 80 00", "+8613800138000", asia, false},
		{"", "+79123456789", Default, false},
		{"8 (912) 345-67-89", "nonsense", Default, false},
	}
	for _, c := range cases {
		if got := Same(c.stored, c.e164, c.o); got != c.want {
			t.Errorf("Same(%q, %q, %+v) = %v, want %v", c.stored, c.e164, c.o, got, c.want)
		}
	}
	if !AnySame([]string{"", "+7 495 000 00 00", "8 912 345 67 89"}, "+79123456789", Default) || AnySame([]string{"+7 495 000 00 00"}, "+79123456789", Default) {
		t.Fatal("AnySame")
	}
}

func TestNationalDigits(t *testing.T) {
	for in, want := range map[string]string{"+79123456789": "9123456789", "79123456789": "9123456789", "+77071234567": "7071234567", "x": ""} {
		if got := NationalDigits(in); got != want {
			t.Errorf("NationalDigits(%q) = %q, want %q", in, got, want)
		}
	}
}
