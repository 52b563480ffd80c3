//! The Dockerfile front end: parser, instructions, shell-word expansion and conversion to a
//! build graph. Pure: text and options in, a definition and an image config out.
