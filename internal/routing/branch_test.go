package routing

import (
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/fault"
	"github.com/switchboard/switchboard/internal/phone"
	"github.com/switchboard/switchboard/internal/store"
)

func branchFixture(t *testing.T) BranchConfig {
	t.Helper()
	c, err := BranchConfig{Mode: "branch", Branches: []Branch{
		{IntegrationID: "msk", Name: "Москва", Keywords: []string{"москва", "MSK", "Красная площадь"}, Numbers: []string{"8 (912) 000-00-00"}},
		{IntegrationID: "kzn", Name: "Казань", Keywords: []string{"казань", "kazan", "Зелёный Дол"}},
		{IntegrationID: "ala", Name: "Алматы", Keywords: []string{"алматы", "almaty"}, Numbers: []string{"+7 701 111 22 33"}},
	}}.Validate([]string{"msk", "kzn", "ala"}, phone.Default)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestBranchDecide(t *testing.T) {
	c := branchFixture(t)
	withDefault := c
	withDefault.DefaultIntegrationID = "kzn"
	single := c
	single.Branches = c.Branches[1:2]
	for _, tc := range []struct {
		name string
		cfg  *BranchConfig
		cu   Customer
		text string
		want Decision
	}{
		{"sticky wins over a keyword", &c, Customer{Branch: "kzn", Phone: "+79120000000"}, "я из Москвы, москва", Decision{IntegrationID: "kzn", Source: SourceSticky}},
		{"a branch that left the config is not sticky", &c, Customer{Branch: "gone"}, "москва", Decision{IntegrationID: "msk", Source: store.BranchByKeyword}},
		{"number written 8 (912) matches wa_id 7912", &c, Customer{Phone: "+79120000000"}, "привет", Decision{IntegrationID: "msk", Source: store.BranchByNumber}},
		{"number +7 701 matches", &c, Customer{Phone: "+77011112233"}, "hello", Decision{IntegrationID: "ala", Source: store.BranchByNumber}},
		{"number beats keyword", &c, Customer{Phone: "+77011112233"}, "Казань", Decision{IntegrationID: "ala", Source: store.BranchByNumber}},
		{"keyword ru, any case", &c, Customer{Phone: "+79990000000"}, "Здравствуйте! Я в КАЗАНЬ приеду", Decision{IntegrationID: "kzn", Source: store.BranchByKeyword}},
		{"keyword en", &c, Customer{}, "Hi, I'm in Almaty.", Decision{IntegrationID: "ala", Source: store.BranchByKeyword}},
		{"keyword latin abbreviation", &c, Customer{}, "msk pls", Decision{IntegrationID: "msk", Source: store.BranchByKeyword}},
		{"keyword is a word, not a substring", &c, Customer{}, "подмосквазань kazanskiy", Decision{SendMenu: true}},
		{"multi-word keyword with ё/е and punctuation", &c, Customer{}, "рядом с красная-площадь", Decision{IntegrationID: "msk", Source: store.BranchByKeyword}},
		{"ё and е are one letter", &c, Customer{}, "я из зеленый дол", Decision{IntegrationID: "kzn", Source: store.BranchByKeyword}},
		{"no rule: menu", &c, Customer{}, "Здравствуйте", Decision{SendMenu: true}},
		{"a digit before any menu is not a choice", &c, Customer{}, "2", Decision{SendMenu: true}},
		{"menu reply 1", &c, Customer{MenusSent: 1}, " 1 ", Decision{IntegrationID: "msk", Source: store.BranchByMenu}},
		{"menu reply 2.", &c, Customer{MenusSent: 1}, "2.", Decision{IntegrationID: "kzn", Source: store.BranchByMenu}},
		{"menu reply 3)", &c, Customer{MenusSent: 2}, "3)", Decision{IntegrationID: "ala", Source: store.BranchByMenu}},
		{"menu reply by name", &c, Customer{MenusSent: 1}, "казань", Decision{IntegrationID: "kzn", Source: store.BranchByMenu}},
		{"menu reply out of range re-sends", &c, Customer{MenusSent: 1}, "4", Decision{SendMenu: true}},
		{"menu reply 0 re-sends", &c, Customer{MenusSent: 2}, "0", Decision{SendMenu: true}},
		{"menu reply nonsense re-sends", &c, Customer{MenusSent: 1}, "что?", Decision{SendMenu: true}},
		{"after the last menu, no default: the first branch", &c, Customer{MenusSent: MaxMenus}, "что?", Decision{IntegrationID: "msk", Source: store.BranchByDefault}},
		{"after the last menu a valid reply still chooses", &c, Customer{MenusSent: MaxMenus}, "2", Decision{IntegrationID: "kzn", Source: store.BranchByMenu}},
		{"after the last menu, the default", &withDefault, Customer{MenusSent: MaxMenus}, "что?", Decision{IntegrationID: "kzn", Source: store.BranchByDefault}},
		{"the default waits for the menus", &withDefault, Customer{MenusSent: 1}, "что?", Decision{SendMenu: true}},
		{"a media message without text gets the menu", &c, Customer{}, "", Decision{SendMenu: true}},
		{"previous branch: the one CRM that had the customer", &c, Customer{Previous: []string{"kzn"}}, "Здравствуйте", Decision{IntegrationID: "kzn", Source: store.BranchByPrevious}},
		{"previous branch beats a keyword and a number", &c, Customer{Phone: "+77011112233", Previous: []string{"kzn"}}, "москва", Decision{IntegrationID: "kzn", Source: store.BranchByPrevious}},
		{"previous in several branches: the menu", &c, Customer{Previous: []string{"kzn", "msk"}}, "Здравствуйте", Decision{SendMenu: true}},
		{"previous outside the branches does not count", &c, Customer{Previous: []string{"gone", "ala"}}, "Здравствуйте", Decision{IntegrationID: "ala", Source: store.BranchByPrevious}},
		{"one branch: no menu, taken at once", &single, Customer{Phone: "+79990000000"}, "Здравствуйте", Decision{IntegrationID: "kzn", Source: store.BranchByDefault}},
		{"one branch: a digit is not a menu reply", &single, Customer{}, "2", Decision{IntegrationID: "kzn", Source: store.BranchByDefault}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.cfg.Decide(tc.cu, tc.text); got != tc.want {
				t.Fatalf("Decide(%+v, %q) = %+v, want %+v", tc.cu, tc.text, got, tc.want)
			}
		})
	}
}

func TestBranchMenuText(t *testing.T) {
	c := branchFixture(t)
	if got, want := c.Menu(), "Здравствуйте! Выберите филиал — ответьте цифрой:\n1 — Москва\n2 — Казань\n3 — Алматы"; got != want {
		t.Fatalf("menu %q", got)
	}
	c.Language = "en"
	if !strings.HasPrefix(c.Menu(), "Hello!") {
		t.Fatalf("english menu %q", c.Menu())
	}
	c.MenuText = "Сеть «Ромашка»"
	if !strings.HasPrefix(c.Menu(), "Сеть «Ромашка»\n1 — Москва") {
		t.Fatalf("custom intro %q", c.Menu())
	}
}

func TestBranchConfigValidate(t *testing.T) {
	bound := []string{"msk", "kzn"}
	ok := func() BranchConfig {
		return BranchConfig{Mode: "branch", Branches: []Branch{
			{IntegrationID: "msk", Name: "Москва", Keywords: []string{"Москва"}, Numbers: []string{"8 (912) 345-67-89"}},
			{IntegrationID: "kzn", Name: "Казань"},
		}}
	}
	got, err := ok().Validate(bound, phone.Default)
	if err != nil {
		t.Fatal(err)
	}
	if got.Branches[0].Numbers[0] != "+79123456789" || got.Branches[0].Keywords[0] != "москва" || got.Language != "ru" {
		t.Fatalf("normalised %+v", got)
	}
	for _, tc := range []struct {
		name, code, field string
		edit              func(*BranchConfig)
	}{
		{"unknown mode", CodeRoutingMode, "mode", func(c *BranchConfig) { c.Mode = "round" }},
		{"no branches", CodeBranchesRequired, "branches", func(c *BranchConfig) { c.Branches = nil }},
		{"integration not bound", CodeBranchNotBound, "branches[1].integration_id", func(c *BranchConfig) { c.Branches[1].IntegrationID = "spb" }},
		{"integration twice", CodeBranchIntegration, "branches[1].integration_id", func(c *BranchConfig) { c.Branches[1].IntegrationID = "msk" }},
		{"empty name", CodeBranchName, "branches[1].name", func(c *BranchConfig) { c.Branches[1].Name = "  " }},
		{"numeric name", CodeBranchName, "branches[1].name", func(c *BranchConfig) { c.Branches[1].Name = "2" }},
		{"name with a newline", CodeBranchName, "branches[0].name", func(c *BranchConfig) { c.Branches[0].Name = "Мо\nсква" }},
		{"duplicate name, other case", CodeBranchNameDup, "branches[1].name", func(c *BranchConfig) { c.Branches[1].Name = "МОСКВА" }},
		{"empty keyword", CodeKeyword, "branches[1].keywords[0]", func(c *BranchConfig) { c.Branches[1].Keywords = []string{" !! "} }},
		{"numeric keyword", CodeKeyword, "branches[1].keywords[0]", func(c *BranchConfig) { c.Branches[1].Keywords = []string{"2"} }},
		{"keyword in two branches", CodeKeywordDup, "branches[1].keywords[0]", func(c *BranchConfig) { c.Branches[1].Keywords = []string{"москва"} }},
		{"long keyword", CodeKeyword, "branches[1].keywords[0]", func(c *BranchConfig) { c.Branches[1].Keywords = []string{strings.Repeat("я", MaxKeyword+1)} }},
		{"bad number", CodeNumber, "branches[1].numbers[0]", func(c *BranchConfig) { c.Branches[1].Numbers = []string{"позвоните мне"} }},
		{"number in two branches, other spelling", CodeNumberDup, "branches[1].numbers[0]", func(c *BranchConfig) { c.Branches[1].Numbers = []string{"79123456789"} }},
		{"bad language", CodeLanguage, "language", func(c *BranchConfig) { c.Language = "de" }},
		{"menu text with a control char", CodeMenuText, "menu_text", func(c *BranchConfig) { c.MenuText = "a\x07b" }},
		{"default not a branch", CodeDefaultBranch, "default_integration_id", func(c *BranchConfig) { c.DefaultIntegrationID = "spb" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok()
			tc.edit(&c)
			_, err := c.Validate(bound, phone.Default)
			fe := fault.As(err)
			if fe == nil || fe.Kind != fault.Invalid || fe.Code != tc.code || !strings.HasPrefix(fe.Message, tc.field+":") || fe.Field != tc.field {
				t.Fatalf("got %v, want %s naming %s", err, tc.code, tc.field)
			}
		})
	}
}

// A branch whose integration was unbound leaves the menu, and its
// customers choose again instead of being held for a CRM that is gone.
func TestBranchUnbound(t *testing.T) {
	c := branchFixture(t)
	c.keepBound([]string{"kzn", "ala"})
	if got := c.Decide(Customer{Branch: "msk"}, "привет"); got != (Decision{SendMenu: true}) {
		t.Fatalf("customer of an unbound branch: %+v", got)
	}
	if got := c.Decide(Customer{Phone: "+79120000000", MenusSent: 1}, "1"); got != (Decision{IntegrationID: "kzn", Source: store.BranchByMenu}) {
		t.Fatalf("menu after unbinding: %+v", got)
	}
	if !strings.HasSuffix(c.Menu(), "\n1 — Казань\n2 — Алматы") {
		t.Fatalf("menu %q", c.Menu())
	}
}
