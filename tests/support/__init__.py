"""Helpers the tests import: corpus, images, servers, SDK, fuzz, browser, hostile files."""
