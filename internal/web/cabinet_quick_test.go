package web

import "testing"

// TestSizeWords: file sizes in the page's language (the Russian page
// showed "193 B" next to "до 16 МБ").
func TestSizeWords(t *testing.T) {
	for _, c := range []struct {
		n    int64
		lang string
		want string
	}{
		{193, "ru", "193 Б"}, {193, "en", "193 B"},
		{5 << 10, "ru", "5 КБ"}, {5 << 10, "en", "5 KB"},
		{3 << 19, "ru", "1,5 МБ"}, {3 << 19, "en", "1.5 MB"},
	} {
		if got := sizeWords(c.n, c.lang); got != c.want {
			t.Errorf("sizeWords(%d, %s) = %q, want %q", c.n, c.lang, got, c.want)
		}
	}
}
