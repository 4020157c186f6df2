package web

import "testing"

func TestAcceptLanguage(t *testing.T) {
	for h, want := range map[string]string{
		"":                           "ru",
		"de-DE,de;q=0.9":             "ru",
		"en-US,en;q=0.9":             "en",
		"en-US,en;q=0.9,ru;q=0.8":    "en",
		"ru-RU,ru;q=0.9,en-US;q=0.8": "ru",
		"en;q=0.5,ru;q=0.5":          "ru", // a tie goes to Russian
		"kk-KZ,en;q=0.7,ru;q=0.8":    "ru",
		"en;q=0":                     "ru",
	} {
		if got := acceptLanguage(h); got != want {
			t.Errorf("%q: %s, want %s", h, got, want)
		}
	}
	// Every text exists in both languages.
	for k := range cabinetTexts["ru"] {
		if cabinetTexts["en"][k] == "" {
			t.Errorf("%s has no English", k)
		}
	}
	for k := range cabinetTexts["en"] {
		if cabinetTexts["ru"][k] == "" {
			t.Errorf("%s has no Russian", k)
		}
	}
}
