package demo

// WAToken lets the tests call the Graph simulator as the gateway does.
const WAToken = waToken
