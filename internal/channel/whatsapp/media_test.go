package whatsapp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/internal/channel"
	"github.com/switchboard/switchboard/internal/channel/graph"
)

// mediaServer plays Graph (GET /v25.0/{media-id}) and the lookaside CDN
// (GET /lookaside), both demanding the bearer token.
func mediaServer(t *testing.T, fileSize string, file []byte) (*Client, *int) {
	cdnHits := 0
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(401)
			io.WriteString(w, `{"error":{"message":"Invalid OAuth access token","code":190}}`)
			return
		}
		switch r.URL.Path {
		case "/v25.0/1284750918273645":
			if r.URL.Query().Get("phone_number_id") != phoneID {
				t.Errorf("query %q", r.URL.RawQuery)
			}
			// The fixture, pointed at this server instead of lookaside.fbsbx.com.
			body := strings.Replace(string(fixture(t, "wa-media-url-response.json")),
				"https://lookaside.fbsbx.com/whatsapp_business/attachments/", srv.URL+"/lookaside", 1)
			body = strings.Replace(body, `"file_size": 203877`, `"file_size": `+fileSize, 1)
			io.WriteString(w, body)
		case "/lookaside":
			cdnHits++
			if r.URL.Query().Get("mid") != "1284750918273645" {
				t.Errorf("cdn query %q", r.URL.RawQuery)
			}
			w.Header().Set("Content-Type", "image/jpeg")
			w.Write(file)
		default:
			w.WriteHeader(404)
			io.WriteString(w, `{"error":{"message":"Unsupported get request","code":100,"error_subcode":33}}`)
		}
	}))
	t.Cleanup(srv.Close)
	return NewClient(graph.NewClient(srv.URL, "v25.0", srv.Client())), &cdnHits
}

func TestFetchMedia(t *testing.T) {
	file := bytes.Repeat([]byte{0xff, 0xd8}, 50) // 100 bytes
	media := &channel.Media{ProviderID: "1284750918273645", MimeType: "image/jpeg"}
	ctx := context.Background()

	t.Run("two steps", func(t *testing.T) {
		c, hits := mediaServer(t, "100", file)
		d, err := c.FetchMedia(ctx, creds, media, 100)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(d.Data, file) || d.MimeType != "image/jpeg" || *hits != 1 {
			t.Errorf("got %d bytes, %q, %d cdn hits", len(d.Data), d.MimeType, *hits)
		}
	})
	t.Run("file_size as string", func(t *testing.T) {
		c, _ := mediaServer(t, `"100"`, file)
		if _, err := c.FetchMedia(ctx, creds, media, 100); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("declared size over the cap: no download", func(t *testing.T) {
		c, hits := mediaServer(t, `"101"`, file)
		_, err := c.FetchMedia(ctx, creds, media, 100)
		if !errors.Is(err, channel.ErrTooLarge) || *hits != 0 {
			t.Errorf("err %v, %d cdn hits", err, *hits)
		}
	})
	t.Run("declared size lies: capped while reading", func(t *testing.T) {
		c, hits := mediaServer(t, "10", file)
		_, err := c.FetchMedia(ctx, creds, media, 99)
		if !errors.Is(err, channel.ErrTooLarge) || *hits != 1 {
			t.Errorf("err %v, %d cdn hits", err, *hits)
		}
	})
	t.Run("bad token", func(t *testing.T) {
		c, _ := mediaServer(t, "100", file)
		_, err := c.FetchMedia(ctx, channel.Credentials{AccountID: phoneID, AccessToken: "wrong"}, media, 100)
		var se *channel.SendError
		if !errors.As(err, &se) || se.Outcome != channel.OutcomeChannelError || strings.Contains(err.Error(), "wrong") {
			t.Errorf("err %v", err)
		}
	})
	t.Run("unknown media id", func(t *testing.T) {
		c, _ := mediaServer(t, "100", file)
		_, err := c.FetchMedia(ctx, creds, &channel.Media{ProviderID: "404"}, 100)
		var se *channel.SendError
		if !errors.As(err, &se) || se.Err.Code != 100 || !strings.HasPrefix(err.Error(), "whatsapp: fetch media 404: ") {
			t.Errorf("err %v", err)
		}
	})
	t.Run("no media", func(t *testing.T) {
		c, _ := mediaServer(t, "100", file)
		if _, err := c.FetchMedia(ctx, creds, &channel.Media{}, 100); err == nil {
			t.Error("no error")
		}
	})
}

func TestFetchMediaLinkWithoutToken(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			t.Error("token sent to a link that did not come from Graph")
		}
		io.WriteString(w, "pdf")
	}))
	defer srv.Close()
	c := NewClient(graph.NewClient(srv.URL, "v25.0", srv.Client()))
	d, err := c.FetchMedia(context.Background(), creds, &channel.Media{URL: srv.URL + "/x.pdf", MimeType: "application/pdf"}, 10)
	if err != nil || string(d.Data) != "pdf" || d.MimeType != "application/pdf" {
		t.Errorf("%v %+v", err, d)
	}
}

func TestUploadMedia(t *testing.T) {
	data := []byte("OggS fake voice")
	var fields map[string]string
	var fileCT, fileName string
	var fileData []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v25.0/"+phoneID+"/media" || r.Header.Get("Authorization") != "Bearer "+token {
			t.Errorf("request %s %s %q", r.Method, r.URL.Path, r.Header.Get("Authorization"))
		}
		mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "multipart/form-data" {
			t.Fatalf("content type %q", r.Header.Get("Content-Type"))
		}
		fields = map[string]string{}
		mr := multipart.NewReader(r.Body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(p)
			if p.FormName() == "file" {
				fileCT, fileName, fileData = p.Header.Get("Content-Type"), p.FileName(), b
				continue
			}
			fields[p.FormName()] = string(b)
		}
		w.Write(fixture(t, "wa-media-upload-response.json"))
	}))
	defer srv.Close()
	c := NewClient(graph.NewClient(srv.URL, "v25.0", srv.Client()))

	id, err := c.UploadMedia(context.Background(), creds, "audio/ogg", "voice.ogg", data)
	if err != nil {
		t.Fatal(err)
	}
	if id != "1837465029183746" {
		t.Errorf("id %q", id)
	}
	if fields["messaging_product"] != "whatsapp" || fields["type"] != "audio/ogg" || len(fields) != 2 {
		t.Errorf("fields %v", fields)
	}
	if fileCT != "audio/ogg" || fileName != "voice.ogg" || !bytes.Equal(fileData, data) {
		t.Errorf("file part %q %q %q", fileCT, fileName, fileData)
	}
}
