package bench

import (
	"strings"
	"testing"
)

func TestReplaceSection(t *testing.T) {
	begin, end := Markers("x")
	oBegin, oEnd := Markers("other")
	other := oBegin + "\nother body\n" + oEnd
	tests := []struct {
		name    string
		doc     string
		want    string
		wantErr bool
	}{
		{
			name: "empty file gets the header",
			doc:  "",
			want: FileHeader + "\n" + begin + "\nnew\n" + end + "\n",
		},
		{
			name: "appended after other sections",
			doc:  "# Title\n\n" + other + "\n",
			want: "# Title\n\n" + other + "\n\n" + begin + "\nnew\n" + end + "\n",
		},
		{
			name: "replaced in place, neighbours kept",
			doc:  "# Title\n\n" + begin + "\nold\nlines\n" + end + "\n\n" + other + "\n",
			want: "# Title\n\n" + begin + "\nnew\n" + end + "\n\n" + other + "\n",
		},
		{
			name: "replaced at end of file without newline",
			doc:  "# Title\n" + begin + "\nold\n" + end,
			want: "# Title\n" + begin + "\nnew\n" + end,
		},
		{
			name: "a longer name is a different section",
			doc:  "# T\n\n<!-- bench:xy begin -->\nkeep\n<!-- bench:xy end -->\n",
			want: "# T\n\n<!-- bench:xy begin -->\nkeep\n<!-- bench:xy end -->\n\n" + begin + "\nnew\n" + end + "\n",
		},
		{name: "begin without end", doc: begin + "\nold\n", wantErr: true},
		{name: "end without begin", doc: "old\n" + end + "\n", wantErr: true},
		{name: "end before begin", doc: end + "\n" + begin + "\n", wantErr: true},
		{name: "section twice", doc: begin + "\n" + end + "\n" + begin + "\n" + end + "\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReplaceSection(tt.doc, "x", "new\n\n")
			if tt.wantErr {
				if err == nil {
					t.Fatalf("no error; got\n%s", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
			// Replacing again with the same body changes nothing.
			again, err := ReplaceSection(got, "x", "new")
			if err != nil || again != got {
				t.Errorf("second replacement: %v\n%q", err, again)
			}
		})
	}
}

func TestReplaceSectionKeepsHeader(t *testing.T) {
	got, err := ReplaceSection("", "x", "body")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got, "# Bosun benchmarks\n") {
		t.Errorf("no header: %q", got)
	}
}
