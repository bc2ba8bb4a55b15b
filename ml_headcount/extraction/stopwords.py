"""Stop words for keyword extraction.

The study removed scikit-learn's English list plus words that say where or as
what someone worked rather than what they know: consultancy and big-tech
names, job-title words and places. Without them the top "keywords" of a CV are
its employers and its city.
"""

CONSULTANCIES_AND_EMPLOYERS = """
accenture deloitte kpmg pwc ey capgemini cognizant infosys wipro tcs tata hcl
mckinsey bcg bain booz allen hamilton ibm oracle sap microsoft google alphabet
amazon aws facebook apple nvidia intel salesforce atos sopra steria ntt
cgi dxc epam globant thoughtworks endava luxoft publicis sapient slalom
avanade kyndryl fujitsu nttdata mahindra mphasis ltimindtree mindtree
hexaware virtusa unisys genpact wns exl persistent zensar birlasoft inc ltd
llc gmbh corp co company limited group plc sa ag bv srl
"""

JOB_TITLE_WORDS = """
senior junior lead principal staff head chief director manager managing
associate assistant intern internship trainee consultant consulting analyst
specialist officer executive vice president vp partner founder cofounder
owner member team employee freelance freelancer contractor contract
full time part fulltime parttime present current currently experiences
experience certifications certification education summary role position
responsible responsibilities years year months month
"""

PLACES = """
london paris berlin munich amsterdam zurich geneva madrid barcelona milan rome
dublin stockholm copenhagen oslo helsinki vienna prague warsaw lisbon brussels
new york san francisco bay area seattle boston chicago austin los angeles
toronto montreal vancouver bangalore bengaluru mumbai pune hyderabad chennai
delhi noida gurgaon singapore tokyo beijing shanghai sydney melbourne tel aviv
usa us uk united states kingdom germany france india china canada australia
europe european america american remote area greater metropolitan region
"""


def study_stop_words() -> frozenset[str]:
    """The study's stop words: scikit-learn's English ones, employers and consultancies, job-title words, places."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS  # scikit-learn takes 2 s to import: only when used

    custom = (CONSULTANCIES_AND_EMPLOYERS + JOB_TITLE_WORDS + PLACES).split()
    return frozenset(ENGLISH_STOP_WORDS) | frozenset(custom)
