package std

// ParseJSON exports parseJSON to the tests.
var ParseJSON = parseJSON
