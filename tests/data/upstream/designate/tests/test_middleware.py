import unittest

from designate.api import middleware


class TestMiddleware(unittest.TestCase):
    def test_error_body(self):
        self.assertEqual(400, middleware.error_body(400, "bad", "x")["code"])

    def test_status_line(self):
        self.assertEqual("404 Not Found", middleware.status_line(404))

    def test_zone_name(self):
        self.assertRaises(ValueError, middleware.validate_zone_name, "example.com")
