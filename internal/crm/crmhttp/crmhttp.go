// Package crmhttp holds the small HTTP pieces every CRM client needs the
// same way: reading an answer with a cap, and errors that never carry the
// request's URL. It imports nothing of the gateway's, so a provider's REST
// client stays free of internal imports.
package crmhttp

import (
	"errors"
	"fmt"
	"io"
	"net/url"
)

// ReadCapped reads at most limit bytes and reports an error, with what it
// read, when there was more: a CRM answering a gigabyte must not take the
// gateway's memory with it.
func ReadCapped(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return data, err
	}
	if int64(len(data)) > limit {
		return data[:limit], fmt.Errorf("response larger than %d bytes", limit)
	}
	return data, nil
}

// StripURL drops *url.Error's copy of the URL, which may carry an access
// token (Bitrix24's auth=), a client secret or a customer's phone in a
// search query, so the error can be logged.
func StripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
