package whatsapp

import "github.com/switchboard/switchboard/internal/channel"

// MediaRules are the outbound files the Cloud API accepts, from Meta's
// "Supported media types" table. Anything else is taken with 202 and only
// fails later with (#100), so the gateway refuses it when it is sent.
var MediaRules = channel.MediaRules{
	channel.MsgImage: {Types: []string{"image/jpeg", "image/png"}, MaxBytes: 5 << 20},
	channel.MsgVideo: {Types: []string{"video/mp4", "video/3gpp"}, MaxBytes: 16 << 20},
	channel.MsgAudio: {Types: audioTypes, MaxBytes: 16 << 20},
	// A voice note goes out as audio, so it takes what audio takes; Meta
	// plays ogg/opus as a voice note.
	channel.MsgVoice: {Types: audioTypes, MaxBytes: 16 << 20},
	// 500 KB is the animated sticker limit; static ones are held to 100 KB
	// by Meta, which the gateway cannot tell apart without decoding.
	channel.MsgSticker: {Types: []string{"image/webp"}, MaxBytes: 500 << 10},
	channel.MsgDocument: {Types: []string{
		"text/plain",
		"application/pdf",
		"application/msword",
		"application/vnd.openxmlformats-officedocument.wordprocessingml.document",
		"application/vnd.ms-excel",
		"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
		"application/vnd.ms-powerpoint",
		"application/vnd.openxmlformats-officedocument.presentationml.presentation",
	}, MaxBytes: 100 << 20},
}

var audioTypes = []string{"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"}
