package catalog

import "testing"

func TestDisplayName(t *testing.T) {
	for _, tc := range []struct {
		gb   int
		want string
	}{
		{128, "Pixel 8 128 GB Obsidian"},
		{1024, "Pixel 8 1 TB Obsidian"},
		{2048, "Pixel 8 2 TB Obsidian"},
		{1536, "Pixel 8 1536 GB Obsidian"},
	} {
		v := Variant{PhoneName: "Pixel 8", StorageGB: tc.gb, Color: "Obsidian"}
		if got := v.DisplayName(); got != tc.want {
			t.Errorf("DisplayName(%d GB) = %q, want %q", tc.gb, got, tc.want)
		}
	}
}
