package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// savedLogin is the session 'shopctl login' leaves for later commands. It holds a
// bearer token, so its file is readable by its owner only.
type savedLogin struct {
	URL       string    `json:"url"`
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// savedLoginPath is where the saved login lives: --config, $SHOPCTL_CONFIG, else the
// user's configuration directory.
func (a *app) savedLoginPath() (string, error) {
	if a.configPath != "" {
		return a.configPath, nil
	}
	if p := a.getenv("SHOPCTL_CONFIG"); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the configuration directory (set SHOPCTL_CONFIG): %w", err)
	}
	return filepath.Join(dir, "phoneshop", "shopctl.json"), nil
}

// loadLogin reads the saved login; nil when there is none.
func (a *app) loadLogin() (*savedLogin, error) {
	path, err := a.savedLoginPath()
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read saved login: %w", err)
	}
	var l savedLogin
	if err := json.Unmarshal(raw, &l); err != nil {
		return nil, fmt.Errorf("saved login %s is damaged (log in again, or delete it): %w", path, err)
	}
	return &l, nil
}

// saveLogin writes the login with mode 0600 in a 0700 directory. It writes a
// temporary file and renames it, so a crash never leaves half a file, and the
// token is never readable by others, not even for a moment.
func (a *app) saveLogin(l savedLogin) error {
	path, err := a.savedLoginPath()
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save login: %w", err)
	}
	raw, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return fmt.Errorf("save login: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".shopctl-*.json") // created 0600
	if err != nil {
		return fmt.Errorf("save login: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if _, err := tmp.Write(append(raw, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("save login: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save login: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o600); err != nil {
		return fmt.Errorf("save login: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save login: %w", err)
	}
	return nil
}

// removeLogin deletes the saved login; none is not an error.
func (a *app) removeLogin() error {
	path, err := a.savedLoginPath()
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove saved login: %w", err)
	}
	return nil
}

// target is the shop a command talks to and the token it shows there.
type target struct {
	url   string
	token string
}

// resolveTarget applies the order the root help documents to the flags, the
// environment and saved (nil when there is none). A saved token goes only to the
// URL it was saved for, and not once expired (the shop would refuse it).
func (a *app) resolveTarget(saved *savedLogin) target {
	t := target{url: firstNonEmpty(a.url, a.getenv("SHOPCTL_URL"))}
	if t.url == "" && saved != nil {
		t.url = saved.URL
	}
	if t.url == "" {
		t.url = defaultURL
	}
	t.url = strings.TrimRight(t.url, "/")
	t.token = firstNonEmpty(a.token, a.getenv("SHOPCTL_TOKEN"))
	if t.token == "" && saved != nil && strings.TrimRight(saved.URL, "/") == t.url && a.now().Before(saved.ExpiresAt) {
		t.token = saved.Token
	}
	return t
}

// client returns an API client for the resolved shop and token.
func (a *app) client() (*apiClient, error) {
	saved, err := a.loadLogin()
	if err != nil {
		return nil, err
	}
	return a.clientFor(a.resolveTarget(saved)), nil
}

func (a *app) clientFor(t target) *apiClient {
	return &apiClient{http: &http.Client{Timeout: a.timeout}, baseURL: t.url, token: t.token}
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}
