"""Which zones served by no master Designate has deleted: the evidence rule of
:mod:`designate_dr.ops.deleted`, for the cases decided without asking a server.
The cases that ask real designate-mdns are in ``tests/dr/test_real_mdns.py``."""
from __future__ import annotations

from oslotest import base

from designate_dr.ops import pools as P
from designate_dr.ops.deleted import catalog_zones, find_deleted
from designate_dr.ops.soa import Patience
from tests.dr.test_pools import SAMPLE


class TestEvidence(base.BaseTestCase):

    def setUp(self) -> None:
        super().setUp()
        self.pools = P.parse_pools(SAMPLE)
        self.patience = Patience(timeout=0.2, retries=0)

    def find(self, candidates, pools=None, **kwargs):
        kwargs.setdefault("masters_serve_some", True)
        kwargs.setdefault("lacking", {})
        return find_deleted(candidates, kwargs.pop("masters", []), pools or self.pools,
                            patience=self.patience, **kwargs)

    def test_nothing_to_decide(self) -> None:
        result = self.find([])
        self.assertEqual(({}, {}, set()), (result.gone, result.doubtful, result.lost))

    def test_a_zone_every_target_still_holds_was_lost_not_deleted(self) -> None:
        result = self.find(["lost.example."], lacking={"lost.example.": []})
        self.assertEqual({}, result.gone)
        self.assertEqual({"lost.example."}, result.lost)
        self.assertIn("Designate never deleted it", result.doubtful["lost.example."])

    def test_the_database_decides_when_it_is_given(self) -> None:
        result = self.find(["live.example.", "old.example.", "never.example."],
                           db_zones=["live.example."], db_deleted=["old.example."],
                           lacking={"never.example.": ["a target"]})
        self.assertEqual("Designate's database has it", result.doubtful["live.example."])
        # deleted in the database, but no master to confirm it is gone: kept
        self.assertEqual("there are no masters to ask", result.doubtful["old.example."])
        self.assertNotIn("never.example.", result.lost)
        self.assertEqual("there are no masters to ask", result.doubtful["never.example."])

    def test_without_the_database_the_word_of_the_masters_is_not_enough_in_two_cases(self) -> None:
        lacking = {"gone.example.": ["region2 PowerDNS"]}
        blind = self.find(["gone.example."], masters_serve_some=False, lacking=lacking)
        self.assertIn("serve none of the targets' zones", blind.doubtful["gone.example."])
        two = P.parse_pools(SAMPLE + SAMPLE.replace("name: default", "name: other"))
        several = self.find(["gone.example."], pools=two, lacking=lacking)
        self.assertIn("pools.yaml has 2 pools", several.doubtful["gone.example."])
        self.assertIn("--designate-conf", several.doubtful["gone.example."])
        self.assertEqual({}, blind.gone | several.gone)

    def test_a_catalog_zone_is_never_removed(self) -> None:
        pools = P.parse_pools(SAMPLE.replace("  ns_records:", "  catalog_zone:\n"
                                             "    catalog_zone_fqdn: Cat.Example.org\n  ns_records:", 1))
        self.assertEqual({"cat.example.org."}, catalog_zones(pools))
        result = self.find(["cat.example.org."], pools=pools, lacking={"cat.example.org.": ["x"]})
        self.assertEqual("it is a pool's catalog zone", result.doubtful["cat.example.org."])

