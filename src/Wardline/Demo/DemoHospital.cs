using System.Globalization;
using System.Text;
using Bogus;
using Hl7.Fhir.Model;
using BogusGender = Bogus.DataSets.Name.Gender;

namespace Wardline.Demo;

/// <summary>
/// Generates a synthetic, deterministic demo hospital as FHIR R4 transaction bundles: first the
/// organisation (hospital, departments, wards, staff), then patients with their records in batches.
/// </summary>
/// <remarks>
/// A urn:uuid reference only resolves inside its own transaction, so patient bundles point at the
/// organisation's resources with conditional references such as
/// <c>Practitioner?identifier=https://wardline.example/staff|dr.onco</c>. The organisation bundle
/// must therefore be committed before any patient bundle.
/// </remarks>
internal static class DemoHospital
{
    internal const string HospitalSystem = "https://wardline.example/organization";
    internal const string DepartmentSystem = "https://wardline.example/department";
    internal const string LocationSystem = "https://wardline.example/location";
    internal const string StaffSystem = "https://wardline.example/staff";
    internal const string RoleSystem = "https://wardline.example/role";
    internal const string MrnSystem = "https://wardline.example/mrn";
    internal const string FlagsSystem = "https://wardline.example/flags";
    internal const string HospitalIdentifier = "wardline-general";
    internal const int PatientsPerBundle = 50;

    /// <summary>
    /// The day the demo data is generated "as of" unless told otherwise. It is fixed, not today,
    /// so that a seed yields byte-identical data whenever it is run.
    /// </summary>
    internal static readonly DateOnly DefaultAsOf = new(2026, 11, 1);

    /// <summary>Usernames of the named demo accounts, in the order the README lists them.</summary>
    internal static IReadOnlyList<string> NamedUsernames { get; } = [.. NamedAccounts().Select(a => a.Username)];

    private const string Snomed = "http://snomed.info/sct";
    private const string Loinc = "http://loinc.org";
    private const string RxNorm = "http://www.nlm.nih.gov/research/umls/rxnorm";
    private const string Cvx = "http://hl7.org/fhir/sid/cvx";
    private const string Ucum = "http://unitsofmeasure.org";
    private const string ActCode = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
    private const string ConfidentialitySystem = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
    private const string PractitionerRoleCodes = "http://terminology.hl7.org/CodeSystem/practitioner-role";
    private const string ParticipationType = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";
    private const string ObservationCategory = "http://terminology.hl7.org/CodeSystem/observation-category";
    private const string Interpretation = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation";
    private const string ConditionClinical = "http://terminology.hl7.org/CodeSystem/condition-clinical";
    private const string ConditionVerification = "http://terminology.hl7.org/CodeSystem/condition-ver-status";
    private const string ConditionCategory = "http://terminology.hl7.org/CodeSystem/condition-category";
    private const string AllergyClinical = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical";
    private const string AllergyVerification = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification";
    private const string ReportCategory = "http://terminology.hl7.org/CodeSystem/v2-0074";
    private const string PhysicalType = "http://terminology.hl7.org/CodeSystem/location-physical-type";
    private const string OrganizationType = "http://terminology.hl7.org/CodeSystem/organization-type";

    /// <summary>Generates the organisation bundle followed by one bundle per batch of patients.</summary>
    internal static IEnumerable<Bundle> Generate(int patientCount, int seed) => Generate(patientCount, seed, DefaultAsOf);

    /// <summary>As <see cref="Generate(int,int)"/>, with every date placed relative to <paramref name="asOf"/>.</summary>
    internal static IEnumerable<Bundle> Generate(int patientCount, int seed, DateOnly asOf)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(patientCount);
        return Iterate(patientCount, seed, asOf);
    }

    private static IEnumerable<Bundle> Iterate(int patientCount, int seed, DateOnly asOf)
    {
        var generator = new Generator(seed, asOf);
        yield return generator.Organisation();
        for (var first = 0; first < patientCount; first += PatientsPerBundle)
            yield return generator.Patients(first, Math.Min(PatientsPerBundle, patientCount - first));
    }

    private enum StaffRole { Doctor, Nurse, Pharmacist, Clerk, ChiefMedicalOfficer, PrivacyOfficer, Administrator }

    private enum Place { Clinic, Ward, Area }

    private sealed record Term(string Code, string Display);

    private sealed record Drug(string Code, string Display, string Dosage);

    private sealed record Lab(string Code, string Display, string Unit, decimal Low, decimal High, decimal RaisedMax, int Decimals);

    private sealed record Panel(string Code, string Display, Lab[] Tests);

    /// <summary>Code is null where the programme has no code in the episodeofcare-type system.</summary>
    private sealed record Programme(string? Code, string Display);

    private sealed record Problem(
        Term Condition,
        bool Chronic,
        int MinAge,
        Drug[] Drugs,
        Term[] Procedures,
        Panel[] Panels,
        string[] Abnormal,
        Programme? Programme = null,
        string? Sensitivity = null,
        AdministrativeGender? Sex = null,
        Term? Imaging = null);

    private sealed record Ward(string Slug, string Name, Place Place);

    private sealed record Department(string Code, string Name, Term? Specialty, (string Class, int Weight)[] Classes, Ward[] Wards, Problem[] Problems);

    private sealed record NamedAccount(string Username, string Given, string Family, AdministrativeGender Gender, string? Department, StaffRole Role);

    private sealed record StaffMember(string Username, string Given, string Family, StaffRole Role, Department? Department, string FullUrl)
    {
        public string Display => Role is StaffRole.Doctor or StaffRole.ChiefMedicalOfficer ? $"Dr. {Given} {Family}" : $"{Given} {Family}";
    }

    private static NamedAccount[] NamedAccounts() =>
    [
        new("cmo.adams", "Margaret", "Adams", AdministrativeGender.Female, null, StaffRole.ChiefMedicalOfficer),
        new("nurse.cardio", "Carla", "Moreno", AdministrativeGender.Female, "cardiology", StaffRole.Nurse),
        new("dr.onco", "Oliver", "Okafor", AdministrativeGender.Male, "oncology", StaffRole.Doctor),
        new("dr.psych", "Priya", "Raman", AdministrativeGender.Female, "psychiatry", StaffRole.Doctor),
        new("clerk.billing", "Ben", "Clarke", AdministrativeGender.Male, "billing", StaffRole.Clerk),
        new("privacy.officer", "Paula", "Reyes", AdministrativeGender.Female, null, StaffRole.PrivacyOfficer),
        new("admin", "Alex", "Morgan", AdministrativeGender.Male, null, StaffRole.Administrator),
    ];

    /// <summary>Generated staff per department, besides the named accounts.</summary>
    private static readonly (string Department, int Doctors, int Nurses, int Pharmacists, int Clerks)[] Staffing =
    [
        ("emergency", 3, 5, 0, 0),
        ("cardiology", 3, 2, 0, 0),
        ("oncology", 2, 3, 0, 0),
        ("psychiatry", 1, 2, 0, 0),
        ("pediatrics", 2, 4, 0, 0),
        ("pharmacy", 0, 0, 4, 0),
        ("billing", 0, 0, 0, 2),
        ("radiology", 2, 2, 0, 0),
        ("intensive-care", 3, 4, 0, 0),
        ("general-medicine", 5, 4, 0, 0),
    ];

    private static readonly Lab Glucose = new("2339-0", "Glucose [Mass/volume] in Blood", "mg/dL", 70m, 99m, 260m, 0);
    private static readonly Lab Creatinine = new("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.6m, 1.3m, 4.5m, 2);
    private static readonly Lab Hemoglobin = new("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 12m, 17.5m, 19m, 1);
    private static readonly Lab Leukocytes = new("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL", 4m, 11m, 24m, 1);
    private static readonly Lab Cholesterol = new("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", 125m, 200m, 320m, 0);
    private static readonly Lab HbA1c = new("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 4m, 5.6m, 11m, 1);
    private static readonly Lab Troponin = new("10839-9", "Troponin I.cardiac [Mass/volume] in Serum or Plasma", "ng/mL", 0m, 0.04m, 12m, 3);
    private static readonly Lab Lactate = new("2524-7", "Lactate [Moles/volume] in Serum or Plasma", "mmol/L", 0.5m, 2.2m, 7m, 1);

    private static readonly Panel Bmp = new("51990-0", "Basic metabolic panel - Blood", [Glucose, Creatinine]);
    private static readonly Panel Cbc = new("58410-2", "CBC panel - Blood by Automated count", [Hemoglobin, Leukocytes]);
    private static readonly Panel Lipids = new("57698-3", "Lipid panel with direct LDL - Serum or Plasma", [Cholesterol]);
    private static readonly Panel A1c = new(HbA1c.Code, HbA1c.Display, [HbA1c]);
    private static readonly Panel TroponinTest = new(Troponin.Code, Troponin.Display, [Troponin]);
    private static readonly Panel LactateTest = new(Lactate.Code, Lactate.Display, [Lactate]);

    private const string HeartRate = "8867-4";
    private const string BloodPressure = "85354-9";
    private const string Temperature = "8310-5";
    private const string RespiratoryRate = "9279-1";
    private const string OxygenSaturation = "2708-6";

    private static readonly Drug Aspirin = new("243670", "aspirin 81 MG Oral Tablet", "Take 1 tablet by mouth once daily");
    private static readonly Drug Metoprolol = new("866924", "Metoprolol Tartrate 25 MG Oral Tablet", "Take 1 tablet by mouth twice daily");
    private static readonly Drug Atorvastatin = new("259255", "atorvastatin 80 MG Oral Tablet", "Take 1 tablet by mouth at bedtime");
    private static readonly Drug Lisinopril = new("314076", "lisinopril 10 MG Oral Tablet", "Take 1 tablet by mouth once daily");
    private static readonly Drug Sertraline = new("312938", "sertraline 100 MG Oral Tablet", "Take 1 tablet by mouth once daily");
    private static readonly Drug Albuterol = new("745679", "200 ACTUAT Albuterol 0.09 MG/ACTUAT Metered Dose Inhaler", "Inhale 2 puffs every 4 hours as needed for wheeze");
    private static readonly Drug Acetaminophen = new("313782", "Acetaminophen 325 MG Oral Tablet", "Take 2 tablets by mouth every 6 hours as needed for pain or fever");
    private static readonly Drug PiperacillinTazobactam = new("1659131", "piperacillin 2000 MG / tazobactam 250 MG Injection", "4.5 g intravenously every 8 hours");

    private static readonly Term Ecg = new("29303009", "Electrocardiographic procedure");
    private static readonly Term Echo = new("40701008", "Echocardiography");
    private static readonly Term Chemotherapy = new("367336001", "Chemotherapy");
    private static readonly Term Radiotherapy = new("33195004", "Teleradiotherapy procedure");
    private static readonly Term Cbt = new("228557008", "Cognitive and behavioral therapy");
    private static readonly Term PsychiatricFollowUp = new("88848003", "Psychiatric follow-up");
    private static readonly Term Spirometry = new("127783003", "Spirometry");
    private static readonly Term ChestXRay = new("399208008", "Plain chest X-ray");
    private static readonly Term Ventilation = new("40617009", "Artificial ventilation");
    private static readonly Term XrChestReport = new("36643-5", "XR Chest 2 Views");
    private static readonly Term CtChestReport = new("24627-2", "CT Chest");

    private static readonly Problem Hypertension = new(
        new("38341003", "Hypertensive disorder, systemic arterial"), true, 25,
        [Lisinopril, new("197361", "amlodipine 5 MG Oral Tablet", "Take 1 tablet by mouth once daily"), new("310798", "Hydrochlorothiazide 25 MG Oral Tablet", "Take 1 tablet by mouth every morning")],
        [], [Bmp], [BloodPressure]);

    private static readonly Problem Pneumonia = new(
        new("233604007", "Pneumonia"), false, 0, [PiperacillinTazobactam], [ChestXRay], [Cbc], [Leukocytes.Code, Temperature, OxygenSaturation, RespiratoryRate]);

    /// <summary>Only given to patients whose whole record is labelled HIV-sensitive.</summary>
    private static readonly Problem Hiv = new(
        new("86406008", "Human immunodeficiency virus infection"), true, 16, [], [], [Cbc], [], new(null, "HIV care programme"), "HIV");

    /// <summary>Only given to patients whose whole record is labelled substance-abuse-sensitive.</summary>
    private static readonly Problem Alcoholism = new(
        new("7200002", "Alcoholism"), true, 18, [], [], [Bmp, Cbc], [], new("da", "Drug and alcohol rehabilitation"), "ETH");

    private static readonly Department[] Departments =
    [
        new("emergency", "Emergency", new("773568002", "Emergency medicine"), [("EMER", 100)],
            [new("ed", "Emergency Department", Place.Area), new("resus", "Resuscitation Bay", Place.Area)],
            [
                new(new("44465007", "Sprain of ankle"), false, 3, [new("310965", "Ibuprofen 200 MG Oral Tablet", "Take 1-2 tablets by mouth every 6 hours as needed for pain")], [], [], []),
                new(new("125605004", "Fracture of bone"), false, 1, [new("1049221", "Acetaminophen 325 MG / Oxycodone Hydrochloride 5 MG Oral Tablet", "Take 1 tablet by mouth every 6 hours as needed for severe pain")], [new("274474001", "Bone immobilization")], [], [HeartRate]),
                new(new("29857009", "Chest pain"), false, 25, [new(Aspirin.Code, Aspirin.Display, "Chew 4 tablets (324 mg) once")], [Ecg], [TroponinTest, Bmp], [HeartRate]),
                new(new("21522001", "Abdominal pain"), false, 2, [Acetaminophen], [], [Cbc, Bmp], []),
                new(new("39848009", "Whiplash injury to neck"), false, 16, [new("849574", "Naproxen sodium 220 MG Oral Tablet", "Take 1 tablet by mouth every 12 hours with food")], [], [], []),
            ]),
        new("cardiology", "Cardiology", new("394579002", "Cardiology"), [("AMB", 70), ("IMP", 30)],
            [new("clinic", "Cardiology Outpatient Clinic", Place.Clinic), new("ward-a", "Cardiology Ward A", Place.Ward), new("ccu", "Coronary Care Unit", Place.Ward)],
            [
                new(new("22298006", "Myocardial infarction"), false, 35,
                    [Aspirin, new("309362", "Clopidogrel 75 MG Oral Tablet", "Take 1 tablet by mouth once daily"), Metoprolol, Atorvastatin],
                    [new("415070008", "Percutaneous coronary intervention"), Ecg], [TroponinTest, Lipids, Bmp], [Troponin.Code, Cholesterol.Code, HeartRate]),
                new(new("49436004", "Atrial fibrillation"), true, 40,
                    [new("855332", "Warfarin Sodium 5 MG Oral Tablet", "Take 1 tablet by mouth once daily; dose adjusted to INR"), Metoprolol], [Ecg, Echo], [Bmp], [HeartRate]),
                new(new("84114007", "Heart failure"), true, 45, [Lisinopril, Metoprolol], [Echo], [Bmp], [Creatinine.Code, RespiratoryRate], new(null, "Heart failure programme")),
                new(new("53741008", "Coronary arteriosclerosis"), true, 40, [Aspirin, Atorvastatin], [Ecg, new("232717009", "Coronary artery bypass grafting")], [Lipids], [Cholesterol.Code]),
                Hypertension,
            ]),
        new("oncology", "Oncology", new("394593009", "Medical oncology"), [("AMB", 75), ("IMP", 25)],
            [new("day-unit", "Oncology Day Unit", Place.Clinic), new("ward", "Oncology Ward", Place.Ward)],
            [
                new(new("254637007", "Non-small cell lung cancer"), true, 45,
                    [new("1736854", "Cisplatin 50 MG Injection", "75 mg/m2 intravenously on day 1 of each 21-day cycle"), new("583214", "Paclitaxel 100 MG Injection", "175 mg/m2 intravenously over 3 hours every 21 days")],
                    [Chemotherapy, Radiotherapy], [Cbc], [OxygenSaturation], new(null, "Lung cancer care pathway")),
                new(new("254837009", "Malignant neoplasm of breast"), true, 30,
                    [new("198240", "Tamoxifen 10 MG Oral Tablet", "Take 2 tablets by mouth once daily"), new("1790099", "10 ML Doxorubicin Hydrochloride 2 MG/ML Injection", "60 mg/m2 intravenously every 21 days"), new("1734919", "Cyclophosphamide 1000 MG Injection", "600 mg/m2 intravenously every 21 days")],
                    [new("392021009", "Lumpectomy of breast"), Chemotherapy], [Cbc], [], new(null, "Breast cancer care pathway"), Sex: AdministrativeGender.Female),
                new(new("363406005", "Malignant neoplasm of colon"), true, 40, [], [Chemotherapy], [Cbc, Bmp], [Hemoglobin.Code], new(null, "Colorectal cancer care pathway")),
                new(new("399068003", "Malignant tumor of prostate"), true, 50, [], [Radiotherapy], [Cbc], [], new(null, "Prostate cancer care pathway"), Sex: AdministrativeGender.Male),
            ]),
        new("psychiatry", "Psychiatry", new("394587001", "Psychiatry"), [("AMB", 85), ("IMP", 15)],
            [new("clinic", "Mental Health Outpatient Clinic", Place.Clinic), new("ward", "Acute Psychiatric Ward", Place.Ward)],
            [
                new(new("35489007", "Depressive disorder"), true, 12,
                    [Sertraline, new("310385", "FLUoxetine 20 MG Oral Capsule", "Take 1 capsule by mouth every morning")], [Cbt, PsychiatricFollowUp], [], [], new(null, "Mental health care programme"), "PSY"),
                new(new("197480006", "Anxiety disorder"), true, 12,
                    [Sertraline, new("197591", "Diazepam 5 MG Oral Tablet", "Take 1 tablet by mouth up to twice daily as needed for anxiety")], [Cbt], [], [HeartRate], new(null, "Mental health care programme"), "PSY"),
                new(new("13746004", "Bipolar disorder"), true, 16, [], [PsychiatricFollowUp], [], [], new(null, "Mental health care programme"), "PSY"),
                new(new("58214004", "Schizophrenia"), true, 16, [], [PsychiatricFollowUp], [], [], new(null, "Mental health care programme"), "PSY"),
                new(new("47505003", "Posttraumatic stress disorder"), true, 12, [Sertraline], [Cbt], [], [], new(null, "Mental health care programme"), "PSY"),
            ]),
        new("pediatrics", "Pediatrics", new("394537008", "Pediatric specialty"), [("AMB", 85), ("IMP", 15)],
            [new("clinic", "Children's Outpatient Clinic", Place.Clinic), new("ward", "Children's Ward", Place.Ward)],
            [
                new(new("195967001", "Asthma"), true, 2,
                    [new("895994", "120 ACTUAT Fluticasone propionate 0.044 MG/ACTUAT Metered Dose Inhaler", "Inhale 2 puffs twice daily"), Albuterol], [Spirometry], [], [RespiratoryRate, OxygenSaturation]),
                new(new("65363002", "Otitis media"), false, 0, [new("308182", "Amoxicillin 250 MG Oral Capsule", "Take 1 capsule by mouth three times daily for 7 days")], [], [], [Temperature]),
                new(new("6142004", "Influenza"), false, 0, [Acetaminophen], [], [Cbc], [Temperature, HeartRate]),
                new(new("43878008", "Streptococcal sore throat"), false, 3, [new("834060", "Penicillin V Potassium 250 MG Oral Tablet", "Take 1 tablet by mouth twice daily for 10 days")], [], [], [Temperature]),
                new(new("36971009", "Sinusitis"), false, 2, [new("562251", "Amoxicillin 250 MG / Clavulanate 125 MG Oral Tablet", "Take 1 tablet by mouth every 8 hours for 10 days")], [], [], []),
            ]),
        new("pharmacy", "Pharmacy", null, [], [new("dispensary", "Central Pharmacy", Place.Clinic)], []),
        new("billing", "Billing", null, [], [new("office", "Billing Office", Place.Clinic)], []),
        new("radiology", "Radiology", new("394914008", "Radiology"), [("AMB", 100)],
            [new("imaging", "Diagnostic Imaging Suite", Place.Clinic)],
            [
                Pneumonia with { Drugs = [], Imaging = XrChestReport },
                new(new("59282003", "Pulmonary embolism"), false, 18, [], [new("169069000", "Computed tomography of chest")], [], [HeartRate, OxygenSaturation], Imaging: CtChestReport),
                new(new("60046008", "Pleural effusion"), false, 18, [], [ChestXRay], [], [RespiratoryRate], Imaging: XrChestReport),
                new(new("33737001", "Fracture of rib"), false, 5, [], [ChestXRay], [], [], Imaging: XrChestReport),
            ]),
        new("intensive-care", "Intensive Care", new("408478003", "Critical care medicine"), [("IMP", 100)],
            [new("icu", "Intensive Care Unit", Place.Ward), new("hdu", "High Dependency Unit", Place.Ward)],
            [
                new(new("91302008", "Sepsis"), false, 0,
                    [PiperacillinTazobactam, new("242969", "4 ML norepinephrine 1 MG/ML Injection", "Continuous intravenous infusion titrated to mean arterial pressure of 65 mmHg")],
                    [new("392247006", "Insertion of catheter into artery")], [LactateTest, Cbc, Bmp], [Lactate.Code, Leukocytes.Code, Temperature, HeartRate, RespiratoryRate]),
                new(new("65710008", "Acute respiratory failure"), false, 0, [], [Ventilation], [LactateTest, Bmp], [OxygenSaturation, RespiratoryRate]),
                new(new("67782005", "Acute respiratory distress syndrome"), false, 0, [], [Ventilation], [Cbc], [OxygenSaturation, RespiratoryRate, HeartRate]),
                new(new("14669001", "Acute renal failure syndrome"), false, 18, [], [], [Bmp], [Creatinine.Code]),
                Pneumonia,
            ]),
        new("general-medicine", "General Medicine", new("419192003", "Internal medicine"), [("AMB", 75), ("IMP", 25)],
            [new("clinic", "General Medicine Clinic", Place.Clinic), new("ward-1", "Medical Ward 1", Place.Ward), new("ward-2", "Medical Ward 2", Place.Ward)],
            [
                new(new("44054006", "Diabetes mellitus type 2"), true, 25,
                    [new("860975", "24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet", "Take 1 tablet by mouth once daily with the evening meal"),
                     new("106892", "insulin isophane, human 70 UNT/ML / insulin, regular, human 30 UNT/ML Injectable Suspension [Humulin]", "Inject 10 units subcutaneously twice daily before meals")],
                    [new("430193006", "Medication reconciliation")], [Bmp, A1c, Lipids], [Glucose.Code, HbA1c.Code], new("diab", "Post co-ordinated diabetes program")),
                Hypertension,
                new(new("55822004", "Hyperlipidemia"), true, 25, [new("312961", "Simvastatin 20 MG Oral Tablet", "Take 1 tablet by mouth at bedtime"), Atorvastatin], [], [Lipids], [Cholesterol.Code]),
                new(new("13645005", "Chronic obstructive lung disease"), true, 40, [Albuterol], [Spirometry], [], [OxygenSaturation, RespiratoryRate]),
                new(new("68566005", "Urinary tract infectious disease"), false, 5, [new("309309", "Ciprofloxacin 500 MG Oral Tablet", "Take 1 tablet by mouth twice daily for 3 days")], [], [Cbc], [Leukocytes.Code, Temperature]),
            ]),
    ];

    /// <summary>Relative chance that an adult's or a child's encounter is with each department.</summary>
    private static readonly (string Department, int Adult, int Child)[] Referrals =
    [
        ("general-medicine", 30, 0),
        ("emergency", 20, 30),
        ("cardiology", 12, 0),
        ("oncology", 8, 0),
        ("psychiatry", 8, 4),
        ("radiology", 10, 10),
        ("intensive-care", 4, 3),
        ("pediatrics", 0, 53),
    ];

    private static readonly (string Code, string Display, string Category, bool Severe)[] Allergies =
    [
        ("91936005", "Allergy to penicillin", "medication", true),
        ("300913006", "Shellfish allergy", "food", true),
        ("91935009", "Allergy to peanuts", "food", true),
        ("417532002", "Allergy to fish", "food", false),
        ("425525006", "Allergy to dairy product", "food", false),
        ("418689008", "Allergy to grass pollen", "environment", false),
        ("232350006", "House dust mite allergy", "environment", false),
        ("419474003", "Allergy to mould", "environment", false),
        ("232347008", "Dander (animal) allergy", "environment", false),
        ("300916003", "Latex allergy", "environment", true),
        ("424213003", "Allergy to bee venom", "environment", true),
    ];

    private static readonly Term[] MildReactions =
    [
        new("271807003", "Eruption of skin"),
        new("247472004", "Wheal"),
        new("76067001", "Sneezing"),
        new("49727002", "Cough"),
        new("422587007", "Nausea"),
    ];

    private static readonly (string Code, string Display)[] MaritalStatuses = [("M", "Married"), ("S", "Never Married"), ("D", "Divorced"), ("W", "Widowed")];

    private static readonly Term Anaphylaxis = new("39579001", "Anaphylaxis");

    private static readonly (string Code, string Display, int MinAge, int MaxAge)[] Vaccines =
    [
        ("08", "Hep B, adolescent or pediatric", 0, 17),
        ("20", "DTaP", 0, 6),
        ("10", "IPV", 0, 6),
        ("133", "Pneumococcal conjugate PCV 13", 0, 5),
        ("03", "MMR", 1, 6),
        ("21", "varicella", 1, 12),
        ("62", "HPV, quadrivalent", 9, 26),
        ("115", "Tdap", 11, 120),
        ("140", "Influenza, seasonal, injectable, preservative free", 0, 120),
        ("208", "SARS-COV-2 (COVID-19) vaccine, mRNA, spike protein, LNP, preservative free, 30 mcg/0.3mL dose", 12, 120),
        ("133", "Pneumococcal conjugate PCV 13", 65, 120),
    ];

    private static CodeableConcept Concept(string system, string code, string display) =>
        new() { Coding = [new Coding(system, code, display)], Text = display };

    private static CodeableConcept Concept(string system, Term term) => Concept(system, term.Code, term.Display);

    private static ResourceReference Reference(string reference, string? display = null) =>
        new() { Reference = reference, Display = display };

    private static ResourceReference ByIdentifier(string type, string system, string value, string display) =>
        Reference($"{type}?identifier={system}|{value}", display);

    private static string Iso(DateTimeOffset time) => time.ToString("yyyy-MM-dd'T'HH:mm:sszzz", CultureInfo.InvariantCulture);

    private static string IsoDate(DateTimeOffset time) => time.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    private static Bundle.EntryComponent Entry(string fullUrl, Resource resource) => new()
    {
        FullUrl = fullUrl,
        Resource = resource,
        Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.POST, Url = resource.TypeName },
    };

    private static Bundle Transaction(List<Bundle.EntryComponent> entries) => new() { Type = Bundle.BundleType.Transaction, Entry = entries };

    private static Quantity Measure(decimal value, string unit, string? display = null) =>
        new() { Value = value, Unit = display ?? unit, System = Ucum, Code = unit };

    /// <summary>ASCII letters only, with diacritics folded (Núñez becomes nunez), for usernames and e-mail addresses.</summary>
    private static string Slug(string name)
    {
        var letters = name.Normalize(NormalizationForm.FormD).ToLowerInvariant().Where(c => c is >= 'a' and <= 'z').ToArray();
        return letters.Length == 0 ? "staff" : new string(letters);
    }

    /// <summary>One instance per enumeration: all randomness flows from one seeded source in a fixed order.</summary>
    private sealed class Generator
    {
        private readonly Random _random;
        private readonly Faker _faker;
        private readonly (Faker Faker, string Language, string LanguageName)[] _foreign;
        private readonly DateTimeOffset _now;
        private readonly List<StaffMember> _staff = [];
        private readonly List<StaffMember> _employeePool = [];
        private readonly Dictionary<string, Department> _departments = Departments.ToDictionary(d => d.Code);

        private readonly Dictionary<string, string> _wardUrls = new(StringComparer.Ordinal);

        public Generator(int seed, DateOnly asOf)
        {
            _random = new Random(seed);
            _now = new DateTimeOffset(asOf.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero);
            // "en" rather than "en_US": only "en" has separate male and female first names.
            _faker = new Faker("en") { Random = new Randomizer(_random.Next()) };
            // Names from these locales carry diacritics (Léonie, Möller, Núñez, Lundström), which exercises search and sorting.
            _foreign =
            [
                (new Faker("fr") { Random = new Randomizer(_random.Next()) }, "fr", "French"),
                (new Faker("de") { Random = new Randomizer(_random.Next()) }, "de", "German"),
                (new Faker("es") { Random = new Randomizer(_random.Next()) }, "es", "Spanish"),
                (new Faker("sv") { Random = new Randomizer(_random.Next()) }, "sv", "Swedish"),
            ];
        }

        private string NewUrn()
        {
            Span<byte> bytes = stackalloc byte[16];
            _random.NextBytes(bytes);
            bytes[7] = (byte)((bytes[7] & 0x0F) | 0x40);
            bytes[8] = (byte)((bytes[8] & 0x3F) | 0x80);
            return "urn:uuid:" + new Guid(bytes).ToString("D");
        }

        private bool Chance(double probability) => _random.NextDouble() < probability;

        private T Pick<T>(IReadOnlyList<T> items) => items[_random.Next(items.Count)];

        private decimal Between(decimal low, decimal high, int decimals) =>
            Math.Round(low + ((high - low) * (decimal)_random.NextDouble()), decimals, MidpointRounding.AwayFromZero);

        private T Weighted<T>(IReadOnlyList<(T Item, int Weight)> choices)
        {
            var roll = _random.Next(choices.Sum(c => c.Weight));
            foreach (var (item, weight) in choices)
            {
                if (roll < weight)
                    return item;
                roll -= weight;
            }
            return choices[^1].Item;
        }

        public Bundle Organisation()
        {
            var entries = new List<Bundle.EntryComponent>();
            var hospitalUrl = NewUrn();
            entries.Add(Entry(hospitalUrl, new Organization
            {
                Identifier = [new Identifier(HospitalSystem, HospitalIdentifier)],
                Active = true,
                Type = [Concept(OrganizationType, "prov", "Healthcare Provider")],
                Name = "Wardline General Hospital",
                Telecom = [new ContactPoint(ContactPoint.ContactPointSystem.Phone, ContactPoint.ContactPointUse.Work, "555-010-0000")],
                Address = [new Address { Line = ["1 Wardline Way"], City = "Springfield", State = "IL", PostalCode = "62701", Country = "US" }],
            }));

            var siteUrl = NewUrn();
            entries.Add(Entry(siteUrl, new Location
            {
                Identifier = [new Identifier(LocationSystem, "main-campus")],
                Status = Location.LocationStatus.Active,
                Name = "Wardline General Hospital, Main Campus",
                Mode = Location.LocationMode.Instance,
                PhysicalType = Concept(PhysicalType, "si", "Site"),
                ManagingOrganization = Reference(hospitalUrl, "Wardline General Hospital"),
            }));

            var departmentUrls = new Dictionary<string, string>();
            foreach (var department in Departments)
            {
                var url = NewUrn();
                departmentUrls[department.Code] = url;
                entries.Add(Entry(url, new Organization
                {
                    Identifier = [new Identifier(DepartmentSystem, department.Code)],
                    Active = true,
                    Type =
                    [
                        new CodeableConcept
                        {
                            Coding = [new Coding(OrganizationType, "dept", "Hospital Department"), new Coding(DepartmentSystem, department.Code, department.Name)],
                            Text = department.Name,
                        },
                    ],
                    Name = department.Name,
                    PartOf = Reference(hospitalUrl, "Wardline General Hospital"),
                }));

                foreach (var ward in department.Wards)
                {
                    var wardUrl = NewUrn();
                    _wardUrls[$"{department.Code}-{ward.Slug}"] = wardUrl;
                    entries.Add(Entry(wardUrl, new Location
                    {
                        Identifier = [new Identifier(LocationSystem, $"{department.Code}-{ward.Slug}")],
                        Status = Location.LocationStatus.Active,
                        Name = ward.Name,
                        Mode = Location.LocationMode.Instance,
                        PhysicalType = ward.Place switch
                        {
                            Place.Ward => Concept(PhysicalType, "wa", "Ward"),
                            Place.Area => Concept(PhysicalType, "area", "Area"),
                            _ => Concept(PhysicalType, "ro", "Room"),
                        },
                        ManagingOrganization = Reference(url, department.Name),
                        PartOf = Reference(siteUrl, "Wardline General Hospital, Main Campus"),
                    }));
                }
            }

            var usernames = new HashSet<string>(StringComparer.Ordinal);
            foreach (var account in NamedAccounts())
            {
                usernames.Add(account.Username);
                var department = account.Department is null ? null : _departments[account.Department];
                AddStaff(entries, new StaffMember(account.Username, account.Given, account.Family, account.Role, department, NewUrn()), account.Gender, hospitalUrl, departmentUrls);
            }

            foreach (var (code, doctors, nurses, pharmacists, clerks) in Staffing)
            {
                var department = _departments[code];
                var roles = Enumerable.Repeat(StaffRole.Doctor, doctors)
                    .Concat(Enumerable.Repeat(StaffRole.Nurse, nurses))
                    .Concat(Enumerable.Repeat(StaffRole.Pharmacist, pharmacists))
                    .Concat(Enumerable.Repeat(StaffRole.Clerk, clerks));
                foreach (var role in roles)
                {
                    var female = Chance(0.5);
                    var given = _faker.Name.FirstName(female ? BogusGender.Female : BogusGender.Male);
                    var family = _faker.Name.LastName();
                    var prefix = role switch
                    {
                        StaffRole.Doctor => "dr",
                        StaffRole.Nurse => "nurse",
                        StaffRole.Pharmacist => "pharm",
                        _ => "clerk",
                    };
                    var username = $"{prefix}.{Slug(family)}";
                    for (var n = 2; !usernames.Add(username); n++)
                        username = string.Create(CultureInfo.InvariantCulture, $"{prefix}.{Slug(family)}{n}");
                    var member = new StaffMember(username, given, family, role, department, NewUrn());
                    AddStaff(entries, member, female ? AdministrativeGender.Female : AdministrativeGender.Male, hospitalUrl, departmentUrls);
                    _employeePool.Add(member);
                }
            }

            // Shuffled so that the staff who are also patients are spread over departments.
            for (var i = _employeePool.Count - 1; i > 0; i--)
            {
                var j = _random.Next(i + 1);
                (_employeePool[i], _employeePool[j]) = (_employeePool[j], _employeePool[i]);
            }

            return Transaction(entries);
        }

        private void AddStaff(List<Bundle.EntryComponent> entries, StaffMember member, AdministrativeGender gender, string hospitalUrl, Dictionary<string, string> departmentUrls)
        {
            _staff.Add(member);
            var clinician = member.Role is StaffRole.Doctor or StaffRole.ChiefMedicalOfficer;
            entries.Add(Entry(member.FullUrl, new Practitioner
            {
                Identifier = [new Identifier(StaffSystem, member.Username) { Use = Identifier.IdentifierUse.Official }],
                Active = true,
                Name = [new HumanName { Use = HumanName.NameUse.Official, Family = member.Family, Given = [member.Given], Prefix = clinician ? ["Dr."] : [] }],
                Telecom = [new ContactPoint(ContactPoint.ContactPointSystem.Email, ContactPoint.ContactPointUse.Work, $"{member.Username}@wardline.example")],
                Gender = gender,
            }));

            var (hl7Code, hl7Display, localCode, text) = member.Role switch
            {
                StaffRole.Doctor => ("doctor", "Doctor", "doctor", "Doctor"),
                StaffRole.Nurse => ("nurse", "Nurse", "nurse", "Nurse"),
                StaffRole.Pharmacist => ("pharmacist", "Pharmacist", "pharmacist", "Pharmacist"),
                StaffRole.ChiefMedicalOfficer => ("doctor", "Doctor", "chief-medical-officer", "Chief Medical Officer"),
                StaffRole.Administrator => ("ict", "ICT professional", "admin", "System Administrator"),
                StaffRole.PrivacyOfficer => (null, null, "privacy-officer", "Privacy Officer"),
                _ => (null, null, "clerk", member.Department is null ? "Clerk" : $"{member.Department.Name} Clerk"),
            };
            var code = new CodeableConcept { Text = text };
            // practitioner-role has no code for clerks or privacy officers, so those carry only the local role.
            if (hl7Code is not null)
                code.Coding.Add(new Coding(PractitionerRoleCodes, hl7Code, hl7Display));
            code.Coding.Add(new Coding(RoleSystem, localCode, text));

            var department = member.Department;
            var organization = department is null
                ? Reference(hospitalUrl, "Wardline General Hospital")
                : Reference(departmentUrls[department.Code], department.Name);
            var specialty = member.Role switch
            {
                StaffRole.Doctor when department?.Specialty is { } s => [Concept(Snomed, s)],
                StaffRole.ChiefMedicalOfficer => [Concept(Snomed, "419192003", "Internal medicine")],
                _ => new List<CodeableConcept>(),
            };
            var role = new PractitionerRole
            {
                Active = true,
                Period = new Period { Start = IsoDate(_now.AddDays(-_random.Next(200, 8000))) },
                Practitioner = Reference(member.FullUrl, member.Display),
                Organization = organization,
                Code = [code],
                Specialty = specialty,
                Telecom = [new ContactPoint(ContactPoint.ContactPointSystem.Email, ContactPoint.ContactPointUse.Work, $"{member.Username}@wardline.example")],
            };
            if (department is not null)
                role.Location = [.. department.Wards.Select(w => Reference(_wardUrls[$"{department.Code}-{w.Slug}"], w.Name))]; // same bundle: urn references
            entries.Add(Entry(NewUrn(), role));
        }

        private StaffMember Clinician(Department department, StaffRole role)
        {
            var candidates = _staff.Where(s => s.Department == department && s.Role == role).ToList();
            return candidates.Count > 0 ? Pick(candidates) : Pick(_staff.Where(s => s.Role == role).ToList());
        }

        private static ResourceReference StaffReference(StaffMember member) =>
            ByIdentifier("Practitioner", StaffSystem, member.Username, member.Display);

        private static ResourceReference DepartmentReference(Department department) =>
            ByIdentifier("Organization", DepartmentSystem, department.Code, department.Name);

        private static Meta? Labels(string? sensitivity, string confidentiality = "R")
        {
            if (sensitivity is null)
                return null;
            var meta = new Meta();
            meta.Security.Add(Confidentiality(confidentiality));
            meta.Security.Add(new Coding(ActCode, sensitivity, sensitivity switch
            {
                "PSY" => "psychiatry disorder information sensitivity",
                "HIV" => "HIV/AIDS information sensitivity",
                _ => "substance abuse information sensitivity",
            }));
            return meta;
        }

        private static Coding Confidentiality(string code) =>
            new(ConfidentialitySystem, code, code == "V" ? "very restricted" : "restricted");

        public Bundle Patients(int first, int count)
        {
            var entries = new List<Bundle.EntryComponent>(count * 40);
            for (var i = 0; i < count; i++)
                AddPatient(entries, first + i);
            return Transaction(entries);
        }

        private sealed record Visit(
            string PatientUrl,
            string PatientName,
            string EncounterUrl,
            Department Department,
            Problem Problem,
            DateTimeOffset Start,
            DateTimeOffset? End,
            StaffMember Doctor,
            StaffMember Nurse,
            string? Sensitivity,
            DateTimeOffset Birth);

        private void AddPatient(List<Bundle.EntryComponent> entries, int index)
        {
            var patientUrl = NewUrn();
            var genderRoll = _random.NextDouble();
            var gender = genderRoll switch
            {
                < 0.49 => AdministrativeGender.Female,
                < 0.98 => AdministrativeGender.Male,
                < 0.99 => AdministrativeGender.Other,
                _ => AdministrativeGender.Unknown,
            };
            var age = Chance(0.2) ? _random.Next(0, 18) : _random.Next(18, 96);
            var birth = _now.AddYears(-age).AddDays(-_random.Next(0, 365));

            var profileRoll = _random.NextDouble();
            var forced = profileRoll switch
            {
                < 0.04 when age >= 12 => "PSY",
                < 0.055 when age >= 16 => "HIV",
                < 0.07 when age >= 18 => "ETH",
                _ => null,
            };
            var vip = Chance(0.01);
            var employee = age >= 18 && _employeePool.Count > 0 && Chance(0.015) ? _employeePool[^1] : null;
            if (employee is not null)
                _employeePool.RemoveAt(_employeePool.Count - 1);

            var bogusGender = gender switch
            {
                AdministrativeGender.Female => BogusGender.Female,
                AdministrativeGender.Male => BogusGender.Male,
                _ => Chance(0.5) ? BogusGender.Female : BogusGender.Male,
            };
            var (nameFaker, language, languageName) = employee is null && Chance(0.25) ? Pick(_foreign) : (_faker, null, null);
            var given = employee?.Given ?? nameFaker.Name.FirstName(bogusGender);
            var family = employee?.Family ?? nameFaker.Name.LastName();
            var givenNames = new List<string> { given };
            if (employee is null && Chance(0.2))
            {
                var middle = nameFaker.Name.FirstName(bogusGender);
                if (middle != given)
                    givenNames.Add(middle);
            }

            var patient = new Patient
            {
                Identifier =
                [
                    new Identifier(MrnSystem, string.Create(CultureInfo.InvariantCulture, $"WL{index + 1:D7}"))
                    {
                        Use = Identifier.IdentifierUse.Usual,
                        Type = Concept("http://terminology.hl7.org/CodeSystem/v2-0203", "MR", "Medical record number"),
                    },
                ],
                Active = true,
                Name = [new HumanName { Use = HumanName.NameUse.Official, Family = family, Given = givenNames }],
                Gender = gender,
                BirthDate = IsoDate(birth),
                Address =
                [
                    new Address
                    {
                        Use = Address.AddressUse.Home,
                        Line = [_faker.Address.StreetAddress()],
                        City = _faker.Address.City(),
                        State = _faker.Address.StateAbbr(),
                        PostalCode = _faker.Address.ZipCode(),
                        Country = "US",
                    },
                ],
                ManagingOrganization = ByIdentifier("Organization", HospitalSystem, HospitalIdentifier, "Wardline General Hospital"),
            };
            patient.Telecom.Add(new ContactPoint(ContactPoint.ContactPointSystem.Phone, Chance(0.6) ? ContactPoint.ContactPointUse.Mobile : ContactPoint.ContactPointUse.Home, _faker.Phone.PhoneNumber("!##-555-01##")));
            if (age >= 16 && Chance(0.6))
                patient.Telecom.Add(new ContactPoint(ContactPoint.ContactPointSystem.Email, ContactPoint.ContactPointUse.Home, _faker.Internet.Email(Slug(given), Slug(family))));
            if (age >= 18)
            {
                var (code, display) = Pick(MaritalStatuses);
                patient.MaritalStatus = Concept("http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", code, display);
            }
            if (language is not null)
                patient.Communication = [new Patient.CommunicationComponent { Language = Concept("urn:ietf:bcp:47", language, languageName!), Preferred = true }];

            var confidentiality = forced is null ? null : "R";
            if (vip)
                confidentiality = Chance(0.4) ? "V" : "R";
            if (forced is not null)
                patient.Meta = Labels(forced, confidentiality!);
            else if (confidentiality is not null)
                patient.Meta = new Meta { Security = [Confidentiality(confidentiality)] };
            if (vip || employee is not null)
            {
                patient.Meta ??= new Meta();
                if (vip)
                    patient.Meta.Tag.Add(new Coding(FlagsSystem, "vip", "VIP"));
                if (employee is not null)
                {
                    patient.Meta.Tag.Add(new Coding(FlagsSystem, "employee", "Employee"));
                    // Lets access rules recognise a member of staff looking at their own record.
                    patient.Identifier.Add(new Identifier(StaffSystem, employee.Username) { Use = Identifier.IdentifierUse.Secondary });
                }
            }
            entries.Add(Entry(patientUrl, patient));

            var patientName = $"{given} {family}";
            var encounterCount = Weighted<int>([(1, 35), (2, 30), (3, 20), (4, 15)]);
            var earliest = birth > _now.AddYears(-3) ? birth : _now.AddYears(-3);
            var days = Math.Max(1, (int)(_now - earliest).TotalDays);
            var dayOffsets = Enumerable.Range(0, encounterCount).Select(_ => _random.Next(days)).Order().ToList();

            var episodes = new Dictionary<string, string>(StringComparer.Ordinal);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            var weight = BaselineWeight(age, gender);
            Visit? firstVisit = null;
            for (var e = 0; e < encounterCount; e++)
            {
                var (department, problem) = e == 0 && forced is not null ? ForcedProblem(forced, age, gender) : Referral(age, gender);
                var visit = AddEncounter(entries, patientUrl, patientName, age, birth, department, problem, earliest.Date.AddDays(dayOffsets[e]), episodes, seen, ref weight);
                firstVisit ??= visit;
            }

            if (firstVisit is not null && Chance(0.18))
            {
                var allergyCount = Chance(0.25) ? 2 : 1;
                foreach (var allergy in Allergies.OrderBy(_ => _random.Next()).Take(allergyCount).ToList())
                    entries.Add(Entry(NewUrn(), NewAllergy(firstVisit, allergy)));
            }
        }

        private static decimal BaselineWeight(int age, AdministrativeGender gender) => age switch
        {
            0 => 7m,
            < 13 => 9m + (age * 2.8m),
            < 18 => 45m + ((age - 13) * 4m),
            _ => gender == AdministrativeGender.Female ? 68m : 82m,
        };

        private (Department, Problem) ForcedProblem(string sensitivity, int age, AdministrativeGender gender) => sensitivity switch
        {
            "PSY" => (_departments["psychiatry"], PickProblem(_departments["psychiatry"], age, gender)!),
            "HIV" => (_departments["general-medicine"], Hiv),
            _ => (_departments["general-medicine"], Alcoholism),
        };

        private (Department, Problem) Referral(int age, AdministrativeGender gender)
        {
            var child = age < 18;
            while (true)
            {
                var code = Weighted([.. Referrals.Select(r => (r.Department, child ? r.Child : r.Adult))]);
                var department = _departments[code];
                if (PickProblem(department, age, gender) is { } problem)
                    return (department, problem);
            }
        }

        private Problem? PickProblem(Department department, int age, AdministrativeGender gender)
        {
            var fitting = department.Problems.Where(p => p.MinAge <= age && (p.Sex is null || p.Sex == gender)).ToList();
            return fitting.Count == 0 ? null : Pick(fitting);
        }

        private Visit AddEncounter(
            List<Bundle.EntryComponent> entries,
            string patientUrl,
            string patientName,
            int age,
            DateTimeOffset birth,
            Department department,
            Problem problem,
            DateTime day,
            Dictionary<string, string> episodes,
            HashSet<string> seen,
            ref decimal weight)
        {
            var @class = Weighted(department.Classes);
            var dayStart = new DateTimeOffset(day, TimeSpan.Zero);
            var start = @class == "AMB"
                ? dayStart.AddHours(8).AddMinutes(_random.Next(0, 9 * 60))
                : dayStart.AddMinutes(_random.Next(0, 24 * 60));
            DateTimeOffset? end = @class switch
            {
                "AMB" => start.AddMinutes(_random.Next(15, 61)),
                "EMER" => start.AddMinutes(_random.Next(60, 8 * 60)),
                _ => start.AddDays(department.Code == "intensive-care" ? _random.Next(2, 15) : _random.Next(1, 11)).AddHours(_random.Next(0, 8)),
            };
            if (end > _now)
                end = null;

            var doctor = Clinician(department, StaffRole.Doctor);
            var nurse = Clinician(department, StaffRole.Nurse);
            var sensitivity = problem.Sensitivity;
            var visit = new Visit(patientUrl, patientName, NewUrn(), department, problem, start, end, doctor, nurse, sensitivity, birth);
            var patientRef = Reference(patientUrl, patientName);
            var encounterRef = Reference(visit.EncounterUrl);
            var conditionUrl = NewUrn();
            var conditionRef = Reference(conditionUrl, problem.Condition.Display);

            string? episodeUrl = null;
            if (problem.Programme is { } programme && !episodes.TryGetValue(problem.Condition.Code, out episodeUrl))
            {
                episodeUrl = NewUrn();
                episodes[problem.Condition.Code] = episodeUrl;
                var finished = end is not null && (_now - start).TotalDays > 540 && Chance(0.3);
                var episode = new EpisodeOfCare
                {
                    Meta = Labels(sensitivity),
                    Status = finished ? EpisodeOfCare.EpisodeOfCareStatus.Finished : EpisodeOfCare.EpisodeOfCareStatus.Active,
                    Type = [programme.Code is null ? new CodeableConcept { Text = programme.Display } : Concept("http://terminology.hl7.org/CodeSystem/episodeofcare-type", programme.Code, programme.Display)],
                    Diagnosis = [new EpisodeOfCare.DiagnosisComponent { Condition = conditionRef, Rank = 1 }],
                    Patient = patientRef,
                    ManagingOrganization = DepartmentReference(department),
                    Period = new Period { Start = Iso(start), End = finished ? Iso(start.AddDays(_random.Next(90, 360))) : null },
                    CareManager = StaffReference(doctor),
                };
                entries.Add(Entry(episodeUrl, episode));
            }

            var ward = department.Wards.FirstOrDefault(w => w.Place == (@class switch { "AMB" => Place.Clinic, "EMER" => Place.Area, _ => Place.Ward })) ?? department.Wards[0];
            if (@class == "IMP")
            {
                var wards = department.Wards.Where(w => w.Place == Place.Ward).ToList();
                if (wards.Count > 0)
                    ward = Pick(wards);
            }
            var locationRef = ByIdentifier("Location", LocationSystem, $"{department.Code}-{ward.Slug}", ward.Name);
            var period = new Period { Start = Iso(start), End = end is { } e ? Iso(e) : null };
            var followUp = !seen.Add(department.Code);
            var encounter = new Encounter
            {
                Meta = Labels(sensitivity),
                Status = end is null ? Encounter.EncounterStatus.InProgress : Encounter.EncounterStatus.Finished,
                Class = new Coding(ActCode, @class, @class switch { "AMB" => "ambulatory", "EMER" => "emergency", _ => "inpatient encounter" }),
                Type =
                [
                    @class switch
                    {
                        "EMER" => Concept(Snomed, "50849002", "Emergency room admission"),
                        "IMP" => Concept(Snomed, "32485007", "Hospital admission"),
                        _ when followUp => Concept(Snomed, "185389009", "Follow-up visit"),
                        _ => Concept(Snomed, "11429006", "Consultation"),
                    },
                ],
                Priority = @class == "EMER" ? Concept("http://terminology.hl7.org/CodeSystem/v3-ActPriority", "EM", "emergency") : null,
                Subject = patientRef,
                EpisodeOfCare = episodeUrl is null ? [] : [Reference(episodeUrl)],
                Participant =
                [
                    new Encounter.ParticipantComponent { Type = [Concept(ParticipationType, "ATND", "attender")], Individual = StaffReference(doctor), Period = period },
                    new Encounter.ParticipantComponent { Type = [Concept(ParticipationType, "PART", "Participation")], Individual = StaffReference(nurse), Period = period },
                ],
                Period = period,
                Diagnosis =
                [
                    new Encounter.DiagnosisComponent
                    {
                        Condition = conditionRef,
                        Use = @class == "AMB"
                            ? Concept("http://terminology.hl7.org/CodeSystem/diagnosis-role", "billing", "Billing")
                            : end is null
                                ? Concept("http://terminology.hl7.org/CodeSystem/diagnosis-role", "AD", "Admission diagnosis")
                                : Concept("http://terminology.hl7.org/CodeSystem/diagnosis-role", "DD", "Discharge diagnosis"),
                        Rank = 1,
                    },
                ],
                Location =
                [
                    new Encounter.LocationComponent
                    {
                        Location = locationRef,
                        Status = end is null ? Encounter.EncounterLocationStatus.Active : Encounter.EncounterLocationStatus.Completed,
                        Period = period,
                    },
                ],
                ServiceProvider = DepartmentReference(department),
            };
            if (@class != "AMB")
            {
                encounter.Hospitalization = new Encounter.HospitalizationComponent
                {
                    AdmitSource = @class == "EMER"
                        ? Concept("http://terminology.hl7.org/CodeSystem/admit-source", "other", "Other")
                        : Chance(0.5)
                            ? Concept("http://terminology.hl7.org/CodeSystem/admit-source", "emd", "From accident/emergency department")
                            : Concept("http://terminology.hl7.org/CodeSystem/admit-source", "gp", "General Practitioner referral"),
                    DischargeDisposition = end is null
                        ? null
                        : age >= 70 && Chance(0.15)
                            ? Concept("http://terminology.hl7.org/CodeSystem/discharge-disposition", "snf", "Skilled nursing facility")
                            : Concept("http://terminology.hl7.org/CodeSystem/discharge-disposition", "home", "Home"),
                };
            }
            entries.Add(Entry(visit.EncounterUrl, encounter));

            entries.Add(Entry(conditionUrl, NewCondition(visit, encounterRef)));
            AddObservations(entries, visit, encounterRef, age, ref weight);

            if (problem.Drugs.Length > 0 && Chance(0.85))
            {
                var drugCount = Math.Min(problem.Drugs.Length, Chance(0.4) ? 2 : 1);
                foreach (var drug in problem.Drugs.OrderBy(_ => _random.Next()).Take(drugCount).ToList())
                    entries.Add(Entry(NewUrn(), NewMedicationRequest(visit, encounterRef, conditionRef, drug, @class)));
            }

            if (problem.Procedures.Length > 0 && (problem.Imaging is not null || Chance(0.5)))
                entries.Add(Entry(NewUrn(), NewProcedure(visit, encounterRef, conditionRef, locationRef, Pick(problem.Procedures))));

            if (problem.Imaging is { } imaging)
                entries.Add(Entry(NewUrn(), NewImagingReport(visit, encounterRef, imaging)));

            if (@class == "AMB" && (department.Code == "pediatrics" ? Chance(0.4) : department.Code == "general-medicine" && Chance(0.15)))
            {
                var vaccines = Vaccines.Where(v => age >= v.MinAge && age <= v.MaxAge).ToList();
                if (vaccines.Count > 0)
                    entries.Add(Entry(NewUrn(), NewImmunization(visit, encounterRef, Pick(vaccines))));
            }

            if (@class == "IMP" && (department.Code == "intensive-care" || Chance(0.5)))
                entries.Add(Entry(NewUrn(), NewCareTeam(visit, encounterRef, period)));

            return visit;
        }

        private Condition NewCondition(Visit visit, ResourceReference encounterRef)
        {
            var problem = visit.Problem;
            var verification = _random.NextDouble() switch
            {
                < 0.9 => ("confirmed", "Confirmed"),
                < 0.97 => ("provisional", "Provisional"),
                _ => ("differential", "Differential"),
            };
            var resolved = !problem.Chronic && visit.End is not null && verification.Item1 == "confirmed" && Chance(0.75);
            var remission = problem.Chronic && visit.Department.Code == "oncology" && visit.End is not null && verification.Item1 == "confirmed" && Chance(0.2);
            var clinical = resolved ? ("resolved", "Resolved") : remission ? ("remission", "Remission") : ("active", "Active");

            FhirDateTime onset;
            if (problem.Chronic)
            {
                var maxDaysBack = Math.Max(1, Math.Min(5 * 365, (int)(visit.Start - visit.Birth).TotalDays));
                onset = new FhirDateTime(IsoDate(visit.Start.AddDays(-_random.Next(maxDaysBack))));
            }
            else
            {
                var started = visit.Start.AddHours(-_random.Next(1, 72));
                onset = new FhirDateTime(Iso(started > visit.Birth ? started : visit.Birth));
            }

            FhirDateTime? abatement = null;
            if (resolved)
            {
                var abated = visit.End!.Value.AddDays(_random.Next(0, 14));
                abatement = new FhirDateTime(Iso(abated < _now ? abated : visit.End.Value));
            }

            return new Condition
            {
                Meta = Labels(visit.Sensitivity),
                ClinicalStatus = Concept(ConditionClinical, clinical.Item1, clinical.Item2),
                VerificationStatus = Concept(ConditionVerification, verification.Item1, verification.Item2),
                Category = [Concept(ConditionCategory, "encounter-diagnosis", "Encounter Diagnosis")],
                Code = Concept(Snomed, problem.Condition),
                Subject = Reference(visit.PatientUrl, visit.PatientName),
                Encounter = encounterRef,
                Onset = onset,
                Abatement = abatement,
                RecordedDate = Iso(visit.Start),
                Recorder = StaffReference(visit.Doctor),
            };
        }

        private Observation NewObservation(Visit visit, ResourceReference encounterRef, bool vital, string code, string display, DateTimeOffset when) => new()
        {
            Meta = Labels(visit.Sensitivity),
            Status = ObservationStatus.Final,
            Category = [vital ? Concept(ObservationCategory, "vital-signs", "Vital Signs") : Concept(ObservationCategory, "laboratory", "Laboratory")],
            Code = Concept(Loinc, code, display),
            Subject = Reference(visit.PatientUrl, visit.PatientName),
            Encounter = encounterRef,
            Effective = new FhirDateTime(Iso(when)),
            Issued = vital ? null : when.AddHours(2) < _now ? when.AddHours(2) : when,
            Performer = [StaffReference(vital ? visit.Nurse : visit.Doctor)],
        };

        private void AddObservations(List<Bundle.EntryComponent> entries, Visit visit, ResourceReference encounterRef, int age, ref decimal weight)
        {
            var abnormal = visit.Problem.Abnormal;
            var when = visit.Start.AddMinutes(_random.Next(5, 30));
            var acute = visit.Department.Code is "emergency" or "intensive-care";

            ResourceReference Add(Observation observation)
            {
                var url = NewUrn();
                entries.Add(Entry(url, observation));
                return Reference(url, observation.Code.Text);
            }

            decimal Vital(string code, decimal low, decimal high, decimal raisedLow, decimal raisedHigh, int decimals) =>
                abnormal.Contains(code) && Chance(0.8) ? Between(raisedLow, raisedHigh, decimals) : Between(low, high, decimals);

            var childBoost = age < 2 ? 45m : age < 12 ? 20m : 0m;
            var heartRate = NewObservation(visit, encounterRef, true, HeartRate, "Heart rate", when);
            heartRate.Value = Measure(Vital(HeartRate, 58m + childBoost, 95m + childBoost, 105m + childBoost, 145m + childBoost, 0), "/min", "beats/minute");
            Add(heartRate);

            var pressure = NewObservation(visit, encounterRef, true, BloodPressure, "Blood pressure panel with all children optional", when);
            var child = age < 13;
            var high = abnormal.Contains(BloodPressure) && Chance(0.8);
            pressure.Component =
            [
                new Observation.ComponentComponent
                {
                    Code = Concept(Loinc, "8480-6", "Systolic blood pressure"),
                    Value = Measure(child ? Between(88m, 112m, 0) : high ? Between(140m, 178m, 0) : Between(104m, 134m, 0), "mm[Hg]", "mmHg"),
                },
                new Observation.ComponentComponent
                {
                    Code = Concept(Loinc, "8462-4", "Diastolic blood pressure"),
                    Value = Measure(child ? Between(52m, 74m, 0) : high ? Between(90m, 108m, 0) : Between(62m, 84m, 0), "mm[Hg]", "mmHg"),
                },
            ];
            Add(pressure);

            weight = Math.Max(2.5m, Math.Round(weight * (1m + Between(-0.03m, 0.04m, 3)), 1));
            var bodyWeight = NewObservation(visit, encounterRef, true, "29463-7", "Body weight", when);
            bodyWeight.Value = Measure(weight, "kg");
            Add(bodyWeight);

            if (acute || abnormal.Contains(Temperature))
            {
                var temperature = NewObservation(visit, encounterRef, true, Temperature, "Body temperature", when);
                temperature.Value = Measure(Vital(Temperature, 36.2m, 37.3m, 38.1m, 39.8m, 1), "Cel", "C");
                Add(temperature);
            }
            if (acute || abnormal.Contains(RespiratoryRate))
            {
                var rateBoost = age < 2 ? 15m : age < 12 ? 6m : 0m;
                var respiration = NewObservation(visit, encounterRef, true, RespiratoryRate, "Respiratory rate", when);
                respiration.Value = Measure(Vital(RespiratoryRate, 12m + rateBoost, 19m + rateBoost, 22m + rateBoost, 32m + rateBoost, 0), "/min", "breaths/minute");
                Add(respiration);
            }
            if (acute || abnormal.Contains(OxygenSaturation))
            {
                var saturation = NewObservation(visit, encounterRef, true, OxygenSaturation, "Oxygen saturation in Arterial blood", when);
                saturation.Value = Measure(Vital(OxygenSaturation, 95m, 100m, 84m, 92m, 0), "%");
                Add(saturation);
            }

            foreach (var panel in visit.Problem.Panels)
            {
                if (!Chance(0.85))
                    continue;
                var drawn = when.AddMinutes(_random.Next(5, 60));
                var results = new List<ResourceReference>();
                foreach (var test in panel.Tests)
                {
                    var raised = abnormal.Contains(test.Code) && Chance(0.8);
                    var value = raised
                        ? Between(test.High + ((test.RaisedMax - test.High) * 0.1m), test.RaisedMax, test.Decimals)
                        : Chance(0.1)
                            ? Between(test.Low * 0.85m, test.High * 1.15m, test.Decimals)
                            : Between(test.Low, test.High, test.Decimals);
                    var flag = value > test.High ? ("H", "High") : value < test.Low ? ("L", "Low") : ("N", "Normal");
                    var observation = NewObservation(visit, encounterRef, false, test.Code, test.Display, drawn);
                    observation.Value = Measure(value, test.Unit);
                    observation.Interpretation = [Concept(Interpretation, flag.Item1, flag.Item2)];
                    observation.ReferenceRange = [new Observation.ReferenceRangeComponent { Low = Measure(test.Low, test.Unit), High = Measure(test.High, test.Unit) }];
                    results.Add(Add(observation));
                }

                if (panel.Tests.Length > 1 || Chance(0.5))
                {
                    var issued = drawn.AddHours(_random.Next(1, 7));
                    entries.Add(Entry(NewUrn(), new DiagnosticReport
                    {
                        Meta = Labels(visit.Sensitivity),
                        Status = DiagnosticReport.DiagnosticReportStatus.Final,
                        Category = [Concept(ReportCategory, "LAB", "Laboratory")],
                        Code = Concept(Loinc, panel.Code, panel.Display),
                        Subject = Reference(visit.PatientUrl, visit.PatientName),
                        Encounter = encounterRef,
                        Effective = new FhirDateTime(Iso(drawn)),
                        Issued = issued < _now ? issued : drawn,
                        ResultsInterpreter = [StaffReference(visit.Doctor)],
                        Result = results,
                    }));
                }
            }
        }

        private MedicationRequest NewMedicationRequest(Visit visit, ResourceReference encounterRef, ResourceReference conditionRef, Drug drug, string @class)
        {
            var current = visit.End is null || (visit.Problem.Chronic && (_now - visit.Start).TotalDays < 180);
            return new MedicationRequest
            {
                Meta = Labels(visit.Sensitivity),
                Status = current ? MedicationRequest.MedicationrequestStatus.Active : MedicationRequest.MedicationrequestStatus.Completed,
                Intent = MedicationRequest.MedicationRequestIntent.Order,
                Category =
                [
                    @class == "IMP"
                        ? Concept("http://terminology.hl7.org/CodeSystem/medicationrequest-category", "inpatient", "Inpatient")
                        : Concept("http://terminology.hl7.org/CodeSystem/medicationrequest-category", "outpatient", "Outpatient"),
                ],
                Medication = Concept(RxNorm, drug.Code, drug.Display),
                Subject = Reference(visit.PatientUrl, visit.PatientName),
                Encounter = encounterRef,
                AuthoredOn = Iso(visit.Start.AddMinutes(_random.Next(10, 50))),
                Requester = StaffReference(visit.Doctor),
                ReasonReference = [conditionRef],
                DosageInstruction = [new Dosage { Sequence = 1, Text = drug.Dosage }],
            };
        }

        private Procedure NewProcedure(Visit visit, ResourceReference encounterRef, ResourceReference conditionRef, ResourceReference locationRef, Term code)
        {
            var performed = visit.Start.AddMinutes(_random.Next(20, 90));
            var done = performed.AddMinutes(_random.Next(15, 120));
            return new Procedure
            {
                Meta = Labels(visit.Sensitivity),
                Status = done < _now ? EventStatus.Completed : EventStatus.InProgress,
                Code = Concept(Snomed, code),
                Subject = Reference(visit.PatientUrl, visit.PatientName),
                Encounter = encounterRef,
                Performed = new Period { Start = Iso(performed), End = done < _now ? Iso(done) : null },
                Performer = [new Procedure.PerformerComponent { Actor = StaffReference(visit.Doctor) }],
                Location = locationRef,
                ReasonReference = [conditionRef],
            };
        }

        private DiagnosticReport NewImagingReport(Visit visit, ResourceReference encounterRef, Term imaging)
        {
            var taken = visit.Start.AddMinutes(_random.Next(10, 40));
            var issued = taken.AddHours(_random.Next(1, 24));
            var final = issued < _now;
            return new DiagnosticReport
            {
                Meta = Labels(visit.Sensitivity),
                Status = final ? DiagnosticReport.DiagnosticReportStatus.Final : DiagnosticReport.DiagnosticReportStatus.Preliminary,
                Category = [Concept(ReportCategory, "RAD", "Radiology")],
                Code = Concept(Loinc, imaging),
                Subject = Reference(visit.PatientUrl, visit.PatientName),
                Encounter = encounterRef,
                Effective = new FhirDateTime(Iso(taken)),
                Issued = final ? issued : taken,
                ResultsInterpreter = [StaffReference(visit.Doctor)],
                Conclusion = $"Findings consistent with {visit.Problem.Condition.Display.ToLowerInvariant()}.",
                ConclusionCode = [Concept(Snomed, visit.Problem.Condition)],
            };
        }

        private Immunization NewImmunization(Visit visit, ResourceReference encounterRef, (string Code, string Display, int MinAge, int MaxAge) vaccine) => new()
        {
            Status = Immunization.ImmunizationStatusCodes.Completed,
            VaccineCode = Concept(Cvx, vaccine.Code, vaccine.Display),
            Patient = Reference(visit.PatientUrl, visit.PatientName),
            Encounter = encounterRef,
            Occurrence = new FhirDateTime(Iso(visit.Start.AddMinutes(_random.Next(10, 40)))),
            PrimarySource = true,
            LotNumber = string.Create(CultureInfo.InvariantCulture, $"{(char)('A' + _random.Next(26))}{(char)('A' + _random.Next(26))}{_random.Next(1000, 10000)}"),
            Site = Chance(0.5) ? Concept("http://terminology.hl7.org/CodeSystem/v3-ActSite", "LA", "left arm") : Concept("http://terminology.hl7.org/CodeSystem/v3-ActSite", "RA", "right arm"),
            Performer =
            [
                new Immunization.PerformerComponent
                {
                    Function = Concept("http://terminology.hl7.org/CodeSystem/v2-0443", "AP", "Administering Provider"),
                    Actor = StaffReference(visit.Nurse),
                },
            ],
        };

        private CareTeam NewCareTeam(Visit visit, ResourceReference encounterRef, Period period)
        {
            var participants = new List<CareTeam.ParticipantComponent>
            {
                new() { Role = [Concept(Snomed, "158965000", "Medical practitioner")], Member = StaffReference(visit.Doctor) },
                new() { Role = [Concept(Snomed, "224535009", "Registered nurse")], Member = StaffReference(visit.Nurse) },
            };
            var second = Clinician(visit.Department, StaffRole.Nurse);
            if (second != visit.Nurse)
                participants.Add(new() { Role = [Concept(Snomed, "224535009", "Registered nurse")], Member = StaffReference(second) });
            return new CareTeam
            {
                Meta = Labels(visit.Sensitivity),
                Status = visit.End is null ? CareTeam.CareTeamStatus.Active : CareTeam.CareTeamStatus.Inactive,
                Category = [Concept(Loinc, "LA27976-2", "Encounter-focused care team")],
                Name = $"{visit.Department.Name} care team for {visit.PatientName}",
                Subject = Reference(visit.PatientUrl, visit.PatientName),
                Encounter = encounterRef,
                Period = new Period { Start = period.Start, End = period.End },
                Participant = participants,
                ManagingOrganization = [DepartmentReference(visit.Department)],
            };
        }

        private AllergyIntolerance NewAllergy(Visit visit, (string Code, string Display, string Category, bool Severe) allergy)
        {
            var anaphylactic = allergy.Severe && Chance(0.4);
            var confirmed = Chance(0.8);
            return new AllergyIntolerance
            {
                ClinicalStatus = Concept(AllergyClinical, "active", "Active"),
                VerificationStatus = confirmed ? Concept(AllergyVerification, "confirmed", "Confirmed") : Concept(AllergyVerification, "unconfirmed", "Unconfirmed"),
                Type = AllergyIntolerance.AllergyIntoleranceType.Allergy,
                Category =
                [
                    allergy.Category switch
                    {
                        "medication" => AllergyIntolerance.AllergyIntoleranceCategory.Medication,
                        "food" => AllergyIntolerance.AllergyIntoleranceCategory.Food,
                        _ => AllergyIntolerance.AllergyIntoleranceCategory.Environment,
                    },
                ],
                Criticality = anaphylactic ? AllergyIntolerance.AllergyIntoleranceCriticality.High : AllergyIntolerance.AllergyIntoleranceCriticality.Low,
                Code = Concept(Snomed, allergy.Code, allergy.Display),
                Patient = Reference(visit.PatientUrl, visit.PatientName),
                Encounter = Reference(visit.EncounterUrl),
                RecordedDate = Iso(visit.Start),
                Recorder = StaffReference(visit.Doctor),
                Reaction =
                [
                    new AllergyIntolerance.ReactionComponent
                    {
                        Manifestation = [Concept(Snomed, anaphylactic ? Anaphylaxis : Pick(MildReactions))],
                        Severity = anaphylactic ? AllergyIntolerance.AllergyIntoleranceSeverity.Severe : Chance(0.6) ? AllergyIntolerance.AllergyIntoleranceSeverity.Mild : AllergyIntolerance.AllergyIntoleranceSeverity.Moderate,
                    },
                ],
            };
        }
    }
}
